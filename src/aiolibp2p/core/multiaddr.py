"""Multiaddr helpers on top of the ``multiaddr`` package (multiformats/py-multiaddr 0.2).

The package provides the value type (:class:`multiaddr.Multiaddr`, which compares and hashes by its
binary form), the protocol table and the per-protocol value codecs.  This module adds a strict
front door and the few questions the rest of the library asks of an address:

* :func:`parse_multiaddr` turns text or binary into a *validated* ``Multiaddr``, raising only
  :class:`~aiolibp2p.core.errors.MultiaddrError`.  ``Multiaddr(bytes)`` itself stores any bytes
  unchecked, so bytes from the wire must come through here.  Text is framed here rather than by
  ``Multiaddr(str)``, for interop with go-multiaddr: the package stores ``/p2p/<CIDv1>`` as CID
  bytes where the binary form is the bare multihash, does not know the legacy ``/ipfs/`` name,
  drops the leading ``/`` of ``/unix`` paths and accepts text without a leading ``/``.  Values are
  still converted by the package's codecs; peer ids by :class:`~aiolibp2p.core.peer.PeerId`.
* :func:`components` walks the binary form.  Use it instead of ``Multiaddr.protocols()`` /
  ``items()`` / ``split()``, which misread ``/ip6zone`` (its length prefix is taken for the next
  protocol code).
* :func:`split_p2p` / :func:`join_p2p`, :func:`transport_family`, :func:`address_scope` and the
  ``is_*`` predicates.

Decoding is bounded: binary input above :data:`MAX_MULTIADDR_BYTES` and text above
:data:`MAX_MULTIADDR_TEXT` characters are refused before any parsing.
"""

from __future__ import annotations

import enum
import ipaddress
from typing import Any, NamedTuple

from multiaddr import Multiaddr
from multiaddr.codecs import codec_by_name
from multiaddr.protocols import P_P2P, protocol_with_code, protocol_with_name

from aiolibp2p._accel import varint
from aiolibp2p.core.errors import MultiaddrError
from aiolibp2p.core.peer import PeerId

__all__ = [
    "MAX_MULTIADDR_BYTES",
    "MAX_MULTIADDR_TEXT",
    "AddressScope",
    "Component",
    "Multiaddr",
    "address_scope",
    "components",
    "is_link_local",
    "is_loopback",
    "is_private",
    "is_public",
    "join_p2p",
    "parse_multiaddr",
    "split_p2p",
    "transport_family",
]

#: Largest binary multiaddr accepted by :func:`parse_multiaddr`.  Real addresses stay well below
#: it (a relayed WebTransport address with two certhashes and two peer ids is ~200 bytes; a
#: ``/dns`` name is at most 253).
MAX_MULTIADDR_BYTES = 1024
#: Largest text multiaddr accepted by :func:`parse_multiaddr`, in characters (text runs to a few
#: times the binary size: base58 peer ids, IPv6 literals, base64url certhashes).
MAX_MULTIADDR_TEXT = 4 * MAX_MULTIADDR_BYTES

_LEGACY_ALIASES = {"ipfs": "p2p"}


class Component(NamedTuple):
    """One protocol of a multiaddr: its code, name, and raw binary value (``b""`` for flags)."""

    code: int
    name: str
    value: bytes


def _walk(data: bytes) -> tuple[Component, ...]:
    """Split and validate a binary multiaddr; every failure is a :class:`MultiaddrError`."""
    out: list[Component] = []
    pos, size = 0, len(data)
    while pos < size:
        try:
            decoded = varint.decode_uvarint(data, pos)
            if decoded is None:
                raise MultiaddrError(f"truncated protocol code at byte {pos}")
            code, pos = decoded
            try:
                proto = protocol_with_code(code)
            except Exception:
                raise MultiaddrError(f"unknown multiaddr protocol code {code}") from None
            codec: Any = codec_by_name(proto.codec)
            if proto.codec is None:
                length = 0
            elif codec.SIZE > 0:
                length = codec.SIZE // 8
            else:  # length-prefixed (the package's utf8 codec says 0 but is prefixed too)
                decoded = varint.decode_uvarint(data, pos)
                if decoded is None:
                    raise MultiaddrError(f"/{proto.name}: truncated length prefix")
                length, pos = decoded
            end = pos + length
            if end > size:
                raise MultiaddrError(
                    f"/{proto.name}: value needs {length} bytes, {size - pos} left"
                )
            value = data[pos:end]
            pos = end
            if code == P_P2P:
                PeerId.from_bytes(value)
            elif proto.codec is not None:
                codec.to_string(proto, value)
        except MultiaddrError:
            raise
        except Exception as exc:  # the package's codecs raise all sorts (ValueError, netaddr, ...)
            raise MultiaddrError(f"invalid binary multiaddr: {exc}") from exc
        out.append(Component(code, proto.name, value))
    return tuple(out)


def _text_to_bytes(text: str) -> bytes:
    if not text.startswith("/"):
        raise MultiaddrError(f"multiaddr text must start with '/': {text!r}")
    parts = text.rstrip("/").split("/")[1:]
    out = bytearray()
    i = 0
    while i < len(parts):
        name = parts[i]
        i += 1
        if not name:
            raise MultiaddrError(f"empty protocol name in {text!r}")
        try:
            proto = protocol_with_name(_LEGACY_ALIASES.get(name, name))
        except Exception:
            raise MultiaddrError(f"unknown multiaddr protocol {name!r} in {text!r}") from None
        out += varint.encode_uvarint(proto.code)
        if proto.codec is None:
            continue
        codec: Any = codec_by_name(proto.codec)
        if codec.IS_PATH:  # /unix: the rest of the text is the path, stored with its leading "/"
            rest = "/".join(parts[i:])
            i = len(parts)
            if not rest:
                raise MultiaddrError(f"/{name} needs a path in {text!r}")
            raw = b"/" + codec.to_bytes(proto, rest)
        else:
            if i >= len(parts) or not parts[i]:
                raise MultiaddrError(f"/{name} needs a value in {text!r}")
            value = parts[i]
            i += 1
            if proto.code == P_P2P:
                raw = PeerId.from_string(value).to_bytes()
            else:
                raw = codec.to_bytes(proto, value)
        if codec.SIZE > 0:
            if len(raw) != codec.SIZE // 8:
                raise MultiaddrError(f"/{name}: bad value length {len(raw)}")
        else:
            out += varint.encode_uvarint(len(raw))
        out += raw
    return bytes(out)


def parse_multiaddr(value: str | bytes | Multiaddr) -> Multiaddr:
    """A validated :class:`Multiaddr` from text, binary (any bytes-like) or another Multiaddr.

    Raises :class:`MultiaddrError` for anything malformed or empty, for unknown protocols, for
    input above the size bounds, and for a ``Multiaddr`` whose stored bytes do not validate.
    """
    if isinstance(value, Multiaddr):
        data = value.to_bytes()
    elif isinstance(value, str):
        if len(value) > MAX_MULTIADDR_TEXT:
            raise MultiaddrError(
                f"multiaddr text of {len(value)} characters exceeds {MAX_MULTIADDR_TEXT}"
            )
        try:
            data = _text_to_bytes(value)
        except MultiaddrError:
            raise
        except Exception as exc:  # codec and PeerId errors
            raise MultiaddrError(f"invalid multiaddr {value!r}: {exc}") from exc
    elif isinstance(value, (bytes, bytearray, memoryview)):
        size = value.nbytes if isinstance(value, memoryview) else len(value)
        if size > MAX_MULTIADDR_BYTES:
            raise MultiaddrError(f"multiaddr of {size} bytes exceeds {MAX_MULTIADDR_BYTES}")
        data = bytes(value)
    else:
        raise MultiaddrError(f"cannot parse a multiaddr from {type(value).__name__}")
    if not data:
        raise MultiaddrError("empty multiaddr")
    if len(data) > MAX_MULTIADDR_BYTES:  # text that encodes to more than the binary bound
        raise MultiaddrError(f"multiaddr of {len(data)} bytes exceeds {MAX_MULTIADDR_BYTES}")
    _walk(data)
    if isinstance(value, Multiaddr):
        return value
    result: Multiaddr = Multiaddr(data)
    return result


def components(ma: Multiaddr) -> tuple[Component, ...]:
    """The components of ``ma`` in order (``MultiaddrError`` if its bytes are malformed)."""
    return _walk(ma.to_bytes())


def _from_components(parts: tuple[Component, ...] | list[Component]) -> Multiaddr:
    out = bytearray()
    for code, _name, value in parts:
        out += varint.encode_uvarint(code)
        proto = protocol_with_code(code)
        if proto.codec is not None and codec_by_name(proto.codec).SIZE <= 0:
            out += varint.encode_uvarint(len(value))
        out += value
    result: Multiaddr = Multiaddr(bytes(out))
    return result


# --------------------------------------------------------------------------- /p2p


def split_p2p(ma: Multiaddr) -> tuple[Multiaddr | None, PeerId | None]:
    """Split a trailing ``/p2p/<id>`` (legacy ``/ipfs/<id>``) off ``ma``.

    Returns ``(transport, peer_id)``: ``(ma, None)`` when there is no trailing peer id, and
    ``(None, peer_id)`` when ``ma`` is only ``/p2p/<id>``.  A ``/p2p/`` that is followed by other
    components (a relay's id before ``/p2p-circuit``) stays in the transport part.
    """
    parts = components(ma)
    if not parts or parts[-1].code != P_P2P:
        return ma, None
    peer_id = PeerId.from_bytes(parts[-1].value)  # cannot fail: components() validated it
    if len(parts) == 1:
        return None, peer_id
    return _from_components(parts[:-1]), peer_id


def join_p2p(ma: Multiaddr, peer_id: PeerId) -> Multiaddr:
    """``ma`` with ``/p2p/<peer_id>`` appended; ``ma`` itself if it already ends with that id.

    Raises :class:`MultiaddrError` if ``ma`` already ends with a different peer id.
    """
    parts = components(ma)
    raw = peer_id.to_bytes()
    if parts and parts[-1].code == P_P2P:
        if parts[-1].value == raw:
            return ma
        raise MultiaddrError(f"{ma} already ends with a different peer id than {peer_id}")
    return _from_components([*parts, Component(P_P2P, "p2p", raw)])


# --------------------------------------------------------------------------- transport family

#: Components that decorate the transport to their left without changing how it is dialed.
_TRAILING_DECORATIONS = frozenset({"p2p", "certhash"})
_FAMILY_BY_LAST = {
    "webrtc": "webrtc",
    "p2p-circuit": "p2p-circuit",
    "webrtc-direct": "webrtc-direct",
    "webtransport": "webtransport",
    "wss": "wss",
    "quic-v1": "quic-v1",
    "quic": "quic",
    "tcp": "tcp",
    "udp": "udp",
    "unix": "unix",
    "memory": "memory",
}


def transport_family(ma: Multiaddr) -> str:
    """The outermost transport the node would dial ``ma`` with.

    One of ``"tcp"``, ``"quic-v1"``, ``"quic"``, ``"ws"``, ``"wss"`` (``/wss`` or ``/tls/ws``,
    optionally with ``/sni/<host>`` between), ``"webtransport"``, ``"webrtc-direct"``,
    ``"webrtc"``, ``"p2p-circuit"`` (relayed), ``"memory"``, ``"udp"``, ``"unix"``, or
    ``"unknown"`` (e.g. a bare IP, or ``/tcp/.../tls/http``).  Trailing ``/p2p/<id>`` and
    ``/certhash/...`` are ignored.  ``/webrtc`` wins over the ``/p2p-circuit`` before it: the
    relay only carries the signalling.
    """
    names = [c.name for c in components(ma)]
    while names and names[-1] in _TRAILING_DECORATIONS:
        names.pop()
    if not names:
        return "unknown"
    last = names[-1]
    if last == "ws":
        i = len(names) - 2
        while i >= 0 and names[i] == "sni":
            i -= 1
        return "wss" if i >= 0 and names[i] == "tls" else "ws"
    return _FAMILY_BY_LAST.get(last, "unknown")


# --------------------------------------------------------------------------- address scope


class AddressScope(enum.Enum):
    """Where an address is reachable from, judged by its first IP or DNS component."""

    PUBLIC = "public"  #: globally routable unicast
    PRIVATE = "private"  #: RFC 1918, RFC 6598 (100.64/10), ULA fc00::/7, and other non-global
    LOOPBACK = "loopback"  #: 127/8, ::1 (and the DNS names localhost, *.localhost)
    LINK_LOCAL = "link-local"  #: 169.254/16, fe80::/10
    UNSPECIFIED = "unspecified"  #: 0.0.0.0, :: (a wildcard listen address)
    DNS = "dns"  #: a DNS name: the scope is known only after resolution
    OTHER = "other"  #: no IP or DNS component (/unix, /memory, a bare /p2p-circuit, ...)


def _nets4(*cidrs: str) -> tuple[ipaddress.IPv4Network, ...]:
    return tuple(ipaddress.IPv4Network(c) for c in cidrs)


def _nets6(*cidrs: str) -> tuple[ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.IPv6Network(c) for c in cidrs)


# Explicit tables rather than ``ipaddress``'s is_private/is_global, whose lists changed between
# CPython patch releases.  The ranges follow the IANA special-purpose registries and
# go-multiaddr ``net/private.go``.
_LOOPBACK4 = ipaddress.IPv4Network("127.0.0.0/8")
_LINK_LOCAL4 = ipaddress.IPv4Network("169.254.0.0/16")
_PRIVATE4 = _nets4(
    "0.0.0.0/8",  # "this network"
    "10.0.0.0/8",  # RFC 1918
    "100.64.0.0/10",  # RFC 6598 shared address space (carrier-grade NAT)
    "172.16.0.0/12",  # RFC 1918
    "192.0.0.0/24",  # IETF protocol assignments
    "192.0.2.0/24",  # TEST-NET-1
    "192.88.99.0/24",  # deprecated 6to4 relay anycast
    "192.168.0.0/16",  # RFC 1918
    "198.18.0.0/15",  # benchmarking
    "198.51.100.0/24",  # TEST-NET-2
    "203.0.113.0/24",  # TEST-NET-3
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",  # reserved, and 255.255.255.255 broadcast
)
_LINK_LOCAL6 = ipaddress.IPv6Network("fe80::/10")
_GLOBAL_UNICAST6 = ipaddress.IPv6Network("2000::/3")
_NOT_GLOBAL6 = _nets6("2001:db8::/32", "3fff::/20")  # documentation, inside 2000::/3
_NAT64_LOCAL6 = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215: maps public IPv4 (as go)
_NAT64_6 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: the low 32 bits are IPv4


def _scope4(ip: ipaddress.IPv4Address) -> AddressScope:
    if ip.packed == b"\x00\x00\x00\x00":
        return AddressScope.UNSPECIFIED
    if ip in _LOOPBACK4:
        return AddressScope.LOOPBACK
    if ip in _LINK_LOCAL4:
        return AddressScope.LINK_LOCAL
    if any(ip in net for net in _PRIVATE4):
        return AddressScope.PRIVATE
    return AddressScope.PUBLIC


def _scope6(ip: ipaddress.IPv6Address) -> AddressScope:
    if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d is the IPv4 address on a dual-stack socket
        return _scope4(ip.ipv4_mapped)
    if ip == ipaddress.IPv6Address("::"):
        return AddressScope.UNSPECIFIED
    if ip == ipaddress.IPv6Address("::1"):
        return AddressScope.LOOPBACK
    if ip in _LINK_LOCAL6:
        return AddressScope.LINK_LOCAL
    if ip in _NAT64_6:  # only a public IPv4 address may be translated (RFC 6052 section 3.1)
        if _scope4(ipaddress.IPv4Address(ip.packed[12:])) is AddressScope.PUBLIC:
            return AddressScope.PUBLIC
        return AddressScope.PRIVATE
    if ip in _NAT64_LOCAL6:
        return AddressScope.PUBLIC
    if ip in _GLOBAL_UNICAST6 and not any(ip in net for net in _NOT_GLOBAL6):
        return AddressScope.PUBLIC
    # fc00::/7 ULA, and everything else outside global unicast: multicast ff00::/8, the
    # deprecated site-local fec0::/10, discard 100::/64, IPv4-compatible ::a.b.c.d, reserved.
    return AddressScope.PRIVATE


def _scope_dns(name: str) -> AddressScope:
    name = name.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):  # RFC 6761 section 6.3
        return AddressScope.LOOPBACK
    return AddressScope.DNS


def address_scope(ma: Multiaddr) -> AddressScope:
    """The :class:`AddressScope` of the first ``ip4``/``ip6``/``dns*`` component of ``ma``.

    ``/ip6zone/<zone>`` before ``/ip6`` is allowed.  IPv4-mapped IPv6 addresses are judged as
    their IPv4 address.  Raises :class:`MultiaddrError` if ``ma`` is malformed.
    """
    for comp in components(ma):
        if comp.name == "ip4":
            return _scope4(ipaddress.IPv4Address(comp.value))
        if comp.name == "ip6":
            return _scope6(ipaddress.IPv6Address(comp.value))
        if comp.name in ("dns", "dns4", "dns6", "dnsaddr"):
            return _scope_dns(comp.value.decode("utf-8"))
    return AddressScope.OTHER


def is_public(ma: Multiaddr) -> bool:
    """Whether ``ma`` is a globally routable IP address (DNS names are not judged: False)."""
    return address_scope(ma) is AddressScope.PUBLIC


def is_private(ma: Multiaddr) -> bool:
    """Whether ``ma`` is in a private or otherwise non-global range (not loopback/link-local)."""
    return address_scope(ma) is AddressScope.PRIVATE


def is_loopback(ma: Multiaddr) -> bool:
    """Whether ``ma`` is a loopback address (127/8, ::1, localhost)."""
    return address_scope(ma) is AddressScope.LOOPBACK


def is_link_local(ma: Multiaddr) -> bool:
    """Whether ``ma`` is a link-local address (169.254/16, fe80::/10)."""
    return address_scope(ma) is AddressScope.LINK_LOCAL
