"""Multiaddrs: the :class:`Multiaddr` value type and the questions the library asks of one.

* :class:`Multiaddr` is an immutable, hashable address built from text (``"/ip4/1.2.3.4/tcp/1"``),
  binary (any bytes-like) or another ``Multiaddr``.  Construction validates strictly and raises
  only :class:`~aiolibp2p.core.errors.MultiaddrError`, so every ``Multiaddr`` in existence is
  well formed; it compares and hashes by its binary form and prints canonical text.
* :func:`parse_multiaddr` is the front door for values of unknown type (it returns a
  ``Multiaddr`` argument unchanged).
* :func:`components` walks an address; :func:`split_p2p` / :func:`join_p2p`,
  :func:`transport_family`, :func:`address_scope` and the ``is_*`` predicates.

The protocol table, the value codecs and the framing rules live in
:mod:`aiolibp2p.core._multiaddr_codec` (they follow go-multiaddr; see there).  Text and binary
input are bounded (:data:`MAX_MULTIADDR_TEXT` characters, :data:`MAX_MULTIADDR_BYTES` bytes)
before any parsing.
"""

from __future__ import annotations

import enum
import ipaddress
from typing import Any

from aiolibp2p.core._multiaddr_codec import (
    PROTOCOLS,
    VAR,
    Component,
    Protocol,
    decode_binary,
    encode_components,
    format_components,
    format_value,
    parse_text,
    protocol_with_code,
    protocol_with_name,
)
from aiolibp2p.core.errors import MultiaddrError
from aiolibp2p.core.peer import PeerId

__all__ = [
    "MAX_MULTIADDR_BYTES",
    "MAX_MULTIADDR_TEXT",
    "PROTOCOLS",
    "VAR",
    "AddressScope",
    "Component",
    "Multiaddr",
    "Protocol",
    "address_scope",
    "components",
    "is_link_local",
    "is_loopback",
    "is_private",
    "is_public",
    "join_p2p",
    "parse_multiaddr",
    "protocol_with_code",
    "protocol_with_name",
    "split_p2p",
    "transport_family",
]

#: Largest binary multiaddr accepted.  Real addresses stay well below it (a relayed
#: WebTransport address with two certhashes and two peer ids is ~200 bytes; a ``/dns`` name is
#: at most 253).
MAX_MULTIADDR_BYTES = 1024
#: Largest text multiaddr accepted, in characters (text runs to a few times the binary size:
#: base58 peer ids, IPv6 literals, base64url certhashes).
MAX_MULTIADDR_TEXT = 4 * MAX_MULTIADDR_BYTES

P_P2P = 421

# Module-level aliases, so the size-bound test can check nothing is decoded before the bound.
_walk = decode_binary
_parse_text = parse_text


def _checked(parts: tuple[Component, ...], data: bytes | None = None) -> bytes:
    """The binary form of ``parts`` after the whole-address rules: not empty, within the size
    bound, a path protocol (``/unix``) only last."""
    if not parts:
        raise MultiaddrError("empty multiaddr")
    for comp in parts[:-1]:
        if comp.code == 400:  # /unix: its text form runs to the end of the address
            raise MultiaddrError("a component follows a path protocol (/unix must be last)")
    if data is None:
        data = encode_components(parts)
    if len(data) > MAX_MULTIADDR_BYTES:
        raise MultiaddrError(f"multiaddr of {len(data)} bytes exceeds {MAX_MULTIADDR_BYTES}")
    return data


class Multiaddr:
    """An immutable, validated multiaddr; equal and hashed by its binary form.

    ``Multiaddr(value)`` takes text, binary (``bytes``, ``bytearray``, ``memoryview``) or another
    ``Multiaddr``, and raises :class:`MultiaddrError` for anything malformed, empty, oversized,
    or of another type.  ``str()`` gives the canonical text (``/p2p/`` with a base58btc peer id,
    certhashes in base64url, IPv6 per RFC 5952), :meth:`to_bytes` the binary form.

    A ``Multiaddr`` is deliberately not iterable (``listen(*addrs)`` with one address must not
    explode it); use :meth:`items`, :meth:`split` or :func:`components`.
    """

    __slots__ = ("_bytes", "_hash", "_parts", "_text")

    _bytes: bytes
    _hash: int
    _parts: tuple[Component, ...]
    _text: str | None

    def __init__(self, value: str | bytes | bytearray | memoryview | Multiaddr) -> None:
        if isinstance(value, Multiaddr):
            self._init(value._bytes, value._parts, value._text)
            return
        if isinstance(value, str):
            if len(value) > MAX_MULTIADDR_TEXT:
                raise MultiaddrError(
                    f"multiaddr text of {len(value)} characters exceeds {MAX_MULTIADDR_TEXT}"
                )
            parts = _parse_text(value)
            self._init(_checked(parts), parts, None)
            return
        if isinstance(value, (bytes, bytearray, memoryview)):
            size = value.nbytes if isinstance(value, memoryview) else len(value)
            if size > MAX_MULTIADDR_BYTES:
                raise MultiaddrError(f"multiaddr of {size} bytes exceeds {MAX_MULTIADDR_BYTES}")
            data = bytes(value)
            parts = _walk(data)
            self._init(_checked(parts, data), parts, None)
            return
        raise MultiaddrError(f"cannot make a multiaddr from {type(value).__name__}")

    def _init(self, data: bytes, parts: tuple[Component, ...], text: str | None) -> None:
        object.__setattr__(self, "_bytes", data)
        object.__setattr__(self, "_parts", parts)
        object.__setattr__(self, "_hash", hash(data))
        object.__setattr__(self, "_text", text)

    @classmethod
    def _from_parts(cls, parts: tuple[Component, ...]) -> Multiaddr:
        """From components that are each valid (taken from other multiaddrs)."""
        data = _checked(parts)
        self = object.__new__(cls)
        self._init(data, parts, None)
        return self

    # ---------------------------------------------------------------- views

    def to_bytes(self) -> bytes:
        """The binary form."""
        return self._bytes

    def __bytes__(self) -> bytes:
        return self._bytes

    def __str__(self) -> str:
        text = self._text
        if text is None:
            text = format_components(self._parts)
            object.__setattr__(self, "_text", text)
        return text

    def __repr__(self) -> str:
        return f"Multiaddr({str(self)!r})"

    def protocols(self) -> tuple[Protocol, ...]:
        """The protocol of each component, in order (``.name``, ``.code``, ``.size``, ...)."""
        return tuple(protocol_with_code(c.code) for c in self._parts)

    def items(self) -> tuple[tuple[str, str], ...]:
        """``(protocol name, value text)`` per component; the value is ``""`` for flags."""
        return tuple((c.name, format_value(c)) for c in self._parts)

    def split(self) -> tuple[Multiaddr, ...]:
        """One single-component ``Multiaddr`` per component, in order."""
        return tuple(Multiaddr._from_parts((c,)) for c in self._parts)

    def value_for_protocol(self, proto: str | int) -> str:
        """The text value of the first component with this protocol name or code (``""`` for a
        protocol without a value; ``/unix`` values keep their leading ``/``).

        Raises :class:`MultiaddrError` if the protocol is unknown or not in the address.
        """
        if isinstance(proto, bool) or not isinstance(proto, (str, int)):
            raise MultiaddrError(f"a protocol is a name or a code, not {type(proto).__name__}")
        code = protocol_with_name(proto).code if isinstance(proto, str) else proto
        for comp in self._parts:
            if comp.code == code:
                return format_value(comp)
        raise MultiaddrError(f"{self} has no /{protocol_with_code(code).name} component")

    # ---------------------------------------------------------------- composition

    def encapsulate(self, other: Multiaddr | str | bytes) -> Multiaddr:
        """``self`` followed by ``other`` (``/ip4/1.2.3.4`` + ``/tcp/1``).

        Raises :class:`MultiaddrError` if ``other`` is malformed, if ``self`` ends with a path
        protocol (``/unix``), or if the result exceeds :data:`MAX_MULTIADDR_BYTES`.
        """
        tail = parse_multiaddr(other)
        return Multiaddr._from_parts(self._parts + tail._parts)

    def decapsulate(self, other: Multiaddr | str | bytes) -> Multiaddr | None:
        """``self`` cut before the *last* occurrence of ``other``'s components (go semantics):
        ``/ip4/1.2.3.4/udp/1/quic-v1`` minus ``/udp/1`` is ``/ip4/1.2.3.4``.

        ``self`` unchanged if ``other`` does not occur; ``None`` if nothing is left.
        """
        cut = parse_multiaddr(other)._parts
        mine = self._parts
        n = len(cut)
        for i in range(len(mine) - n, -1, -1):
            if mine[i : i + n] == cut:
                return Multiaddr._from_parts(mine[:i]) if i else None
        return self

    # ---------------------------------------------------------------- value semantics

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Multiaddr):
            return self._bytes == other._bytes
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        if isinstance(other, Multiaddr):
            return self._bytes != other._bytes
        return NotImplemented

    def __hash__(self) -> int:
        return self._hash

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Multiaddr is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Multiaddr is immutable")

    def __reduce__(self) -> Any:
        return (Multiaddr, (self._bytes,))

    def __copy__(self) -> Multiaddr:
        return self

    def __deepcopy__(self, memo: object) -> Multiaddr:
        return self


def parse_multiaddr(value: str | bytes | bytearray | memoryview | Multiaddr) -> Multiaddr:
    """A :class:`Multiaddr` from text, binary (any bytes-like) or a ``Multiaddr`` (returned as
    is: it is valid by construction).

    Raises :class:`MultiaddrError` for anything malformed or empty, for unknown protocols, for
    input above the size bounds, and for values of any other type.
    """
    if isinstance(value, Multiaddr):
        return value
    return Multiaddr(value)


def _parts(ma: Multiaddr) -> tuple[Component, ...]:
    if isinstance(ma, Multiaddr):
        return ma._parts
    return parse_multiaddr(ma)._parts  # text or bytes given where a Multiaddr was expected


def components(ma: Multiaddr) -> tuple[Component, ...]:
    """The components of ``ma`` in order: ``Component(code, name, raw value)``."""
    return _parts(ma)


def _from_components(parts: tuple[Component, ...] | list[Component]) -> Multiaddr:
    return Multiaddr._from_parts(tuple(parts))


# --------------------------------------------------------------------------- /p2p


def split_p2p(ma: Multiaddr) -> tuple[Multiaddr | None, PeerId | None]:
    """Split a trailing ``/p2p/<id>`` (legacy ``/ipfs/<id>``) off ``ma``.

    Returns ``(transport, peer_id)``: ``(ma, None)`` when there is no trailing peer id, and
    ``(None, peer_id)`` when ``ma`` is only ``/p2p/<id>``.  A ``/p2p/`` that is followed by other
    components (a relay's id before ``/p2p-circuit``) stays in the transport part.
    """
    parts = _parts(ma)
    if parts[-1].code != P_P2P:
        return parse_multiaddr(ma), None
    peer_id = PeerId.from_bytes(parts[-1].value)  # cannot fail: the Multiaddr validated it
    if len(parts) == 1:
        return None, peer_id
    return Multiaddr._from_parts(parts[:-1]), peer_id


def join_p2p(ma: Multiaddr, peer_id: PeerId) -> Multiaddr:
    """``ma`` with ``/p2p/<peer_id>`` appended; ``ma`` itself if it already ends with that id.

    Raises :class:`MultiaddrError` if ``ma`` already ends with a different peer id.
    """
    ma = parse_multiaddr(ma)
    parts = ma._parts
    raw = peer_id.to_bytes()
    if parts[-1].code == P_P2P:
        if parts[-1].value == raw:
            return ma
        raise MultiaddrError(f"{ma} already ends with a different peer id than {peer_id}")
    return Multiaddr._from_parts((*parts, Component(P_P2P, "p2p", raw)))


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
