"""The multiaddr protocol table, the per-protocol value codecs, and text/binary framing.

Internal to :mod:`aiolibp2p.core.multiaddr`, which owns the public :class:`Multiaddr` type and
the size bounds.  Everything here works on validated *components*: ``(code, name, raw value)``.

Sources: the protocol table is ``multiformats/multiaddr`` ``protocols.csv`` (9b7b3fa); value
formats and the framing rules follow go-multiaddr (7fae00a), the reference implementation that
the other libp2p implementations interoperate with:

* binary: ``uvarint(code) || value``; fixed-size values are raw, variable ones are prefixed
  with a uvarint length that must not be 0; a *path* protocol (``/unix``) must be the last
  component, because its text form runs to the end of the address;
* text: ``(/<name>[/<value>])+``, a leading ``/`` required, trailing ``/`` ignored, no empty
  names or values; ``/ipfs`` is read as ``/p2p``; a path protocol takes the rest of the text as
  its value, with the leading ``/`` kept (``/unix/tmp/s`` stores ``b"/tmp/s"``).

``/memory`` is a fixed 8-byte unsigned integer, as in go-multiaddr and rust-multiaddr (the csv
says ``V``).  Text values are checked more strictly than go in a few places (DNS names must be
plausible host names, ``/ip6`` takes no bare IPv4, ``/ip4`` no IPv6 form); binary values are
checked as go checks them, except that DNS names must be plausible host names and that the text
form must be able to represent every value (names, zones and unix paths must be UTF-8), and
that ``/p2p`` identity peer ids must hold a valid public key (:class:`PeerId`).  Base32/base64
text is decoded like go's decoders do: unused trailing bits are ignored, so the canonical text
printed back may differ from the input in its last character.

Every failure raises :class:`~aiolibp2p.core.errors.MultiaddrError`.
"""

from __future__ import annotations

import base64
import ipaddress
import unicodedata
from collections.abc import Callable, Iterable
from typing import NamedTuple

import base58

from aiolibp2p._accel import varint
from aiolibp2p.core.errors import Libp2pError, MultiaddrError
from aiolibp2p.core.peer import PeerId

__all__ = [
    "PROTOCOLS",
    "VAR",
    "Component",
    "Protocol",
    "decode_binary",
    "encode_components",
    "format_components",
    "format_value",
    "parse_text",
    "protocol_with_code",
    "protocol_with_name",
]

#: :attr:`Protocol.size` of a protocol whose value is uvarint-length-prefixed.
VAR = -1


class Protocol(NamedTuple):
    """One row of the protocol table."""

    code: int
    name: str
    #: Value size in bits: ``0`` for a protocol without a value, :data:`VAR` for a
    #: length-prefixed value.
    size: int
    #: A path protocol (``/unix``): its text value is the rest of the address.
    path: bool = False

    @property
    def has_value(self) -> bool:
        return self.size != 0


class Component(NamedTuple):
    """One protocol of a multiaddr: its code, name, and raw binary value (``b""`` for flags)."""

    code: int
    name: str
    value: bytes


#: The protocol table (``protocols.csv`` plus go-multiaddr's ``plaintextv2``).
PROTOCOLS: tuple[Protocol, ...] = (
    Protocol(4, "ip4", 32),
    Protocol(6, "tcp", 16),
    Protocol(273, "udp", 16),
    Protocol(33, "dccp", 16),
    Protocol(41, "ip6", 128),
    Protocol(42, "ip6zone", VAR),
    Protocol(43, "ipcidr", 8),
    Protocol(53, "dns", VAR),
    Protocol(54, "dns4", VAR),
    Protocol(55, "dns6", VAR),
    Protocol(56, "dnsaddr", VAR),
    Protocol(132, "sctp", 16),
    Protocol(301, "udt", 0),
    Protocol(302, "utp", 0),
    Protocol(400, "unix", VAR, path=True),
    Protocol(421, "p2p", VAR),
    Protocol(444, "onion", 96),
    Protocol(445, "onion3", 296),
    Protocol(446, "garlic64", VAR),
    Protocol(447, "garlic32", VAR),
    Protocol(448, "tls", 0),
    Protocol(449, "sni", VAR),
    Protocol(454, "noise", 0),
    Protocol(460, "quic", 0),
    Protocol(461, "quic-v1", 0),
    Protocol(465, "webtransport", 0),
    Protocol(466, "certhash", VAR),
    Protocol(480, "http", 0),
    Protocol(481, "http-path", VAR),
    Protocol(443, "https", 0),
    Protocol(477, "ws", 0),
    Protocol(478, "wss", 0),
    Protocol(479, "p2p-websocket-star", 0),
    Protocol(277, "p2p-stardust", 0),
    Protocol(275, "p2p-webrtc-star", 0),
    Protocol(276, "p2p-webrtc-direct", 0),
    Protocol(280, "webrtc-direct", 0),
    Protocol(281, "webrtc", 0),
    Protocol(290, "p2p-circuit", 0),
    Protocol(777, "memory", 64),
    Protocol(7367777, "plaintextv2", 0),
)

_BY_CODE: dict[int, Protocol] = {p.code: p for p in PROTOCOLS}
_BY_NAME: dict[str, Protocol] = {p.name: p for p in PROTOCOLS}
_BY_NAME["ipfs"] = _BY_CODE[421]  # the legacy name of /p2p (read, never written)


def protocol_with_code(code: int) -> Protocol:
    """The protocol with this code; :class:`MultiaddrError` if there is none."""
    proto = _BY_CODE.get(code)
    if proto is None:
        raise MultiaddrError(f"unknown multiaddr protocol code {code}")
    return proto


def protocol_with_name(name: str) -> Protocol:
    """The protocol with this name (``ipfs`` is ``p2p``); :class:`MultiaddrError` if none."""
    proto = _BY_NAME.get(name) if isinstance(name, str) else None
    if proto is None:
        raise MultiaddrError(f"unknown multiaddr protocol {name!r}")
    return proto


# --------------------------------------------------------------------------- value codecs
#
# Each codec is (parse, format, check): parse turns the text value into raw bytes (and validates
# it), format turns validated raw bytes into the canonical text value, check validates raw bytes
# from the wire.  Fixed sizes and the non-empty rule for length-prefixed values are enforced by
# the framing, not here.

_Parse = Callable[[str], bytes]
_Format = Callable[[bytes], str]
_Check = Callable[[bytes], None]

_DIGITS = frozenset("0123456789")


def _uint(text: str, bits: int, what: str) -> int:
    """A decimal unsigned integer below ``2**bits`` (ASCII digits only; leading zeros as go)."""
    if not text or not _DIGITS.issuperset(text):
        raise MultiaddrError(f"invalid {what} {text!r}")
    stripped = text.lstrip("0")
    if len(stripped) > 20:  # above 2**64 whatever the digits: no need to convert
        raise MultiaddrError(f"{what} {text!r} out of range")
    number = int(stripped or "0")
    if number >= 1 << bits:
        raise MultiaddrError(f"{what} {text!r} out of range")
    return number


def _no_check(raw: bytes) -> None:
    return None


# ip4 / ip6 / ipcidr


def _ip4_parse(text: str) -> bytes:
    if not set(text) <= _DIGITS | {"."}:
        raise MultiaddrError(f"invalid IPv4 address {text!r}")
    try:  # refuses leading zeros, short forms and octets above 255
        return ipaddress.IPv4Address(text).packed
    except ValueError:
        raise MultiaddrError(f"invalid IPv4 address {text!r}") from None


def _ip4_format(raw: bytes) -> str:
    return f"{raw[0]}.{raw[1]}.{raw[2]}.{raw[3]}"


_IP6_CHARS = frozenset("0123456789abcdefABCDEF:.")
_V4_MAPPED_PREFIX = bytes(10) + b"\xff\xff"


def _ip6_parse(text: str) -> bytes:
    # No zone ("%eth0": that is /ip6zone's job) and no bare IPv4 (go would map it; a typo here).
    if ":" not in text or not set(text) <= _IP6_CHARS:
        raise MultiaddrError(f"invalid IPv6 address {text!r}")
    try:
        return ipaddress.IPv6Address(text).packed
    except ValueError:
        raise MultiaddrError(f"invalid IPv6 address {text!r}") from None


def _ip6_format(raw: bytes) -> str:
    # RFC 5952, as go prints it; IPv4-mapped addresses as ::ffff:a.b.c.d on every Python version.
    if raw[:12] == _V4_MAPPED_PREFIX:
        return "::ffff:" + _ip4_format(raw[12:])
    return str(ipaddress.IPv6Address(raw))


def _ipcidr_parse(text: str) -> bytes:
    return bytes((_uint(text, 8, "CIDR mask"),))


def _ipcidr_format(raw: bytes) -> str:
    return str(raw[0])


# ports (tcp, udp, dccp, sctp) and /memory


def _port_parse(text: str) -> bytes:
    return _uint(text, 16, "port").to_bytes(2, "big")


def _uint_format(raw: bytes) -> str:
    return str(int.from_bytes(raw, "big"))


def _memory_parse(text: str) -> bytes:
    return _uint(text, 64, "memory address").to_bytes(8, "big")


# utf-8 values: ip6zone, dns*, sni, unix


def _utf8(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MultiaddrError(f"{what} is not valid UTF-8") from None


def _encode_utf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        raise MultiaddrError(f"{what} cannot be encoded as UTF-8") from None


def _check_zone(zone: str) -> None:
    if not zone or "/" in zone:
        raise MultiaddrError(f"invalid IPv6 zone {zone!r}")


def _zone_parse(text: str) -> bytes:
    _check_zone(text)
    return _encode_utf8(text, "IPv6 zone")


def _zone_check(raw: bytes) -> None:
    _check_zone(_utf8(raw, "IPv6 zone"))


_DNS_ASCII = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def _check_dns_name(name: str) -> None:
    """A plausible host name: dot-separated labels of 1-63 letters, digits, ``-`` or ``_``
    (any Unicode letter, mark or digit for IDNs), 253 characters at most, one optional trailing
    dot.  Laxer than IDNA (``_`` is common in service names), stricter than go (any bytes)."""
    body = name[:-1] if name.endswith(".") else name
    if not body or len(body) > 253:
        raise MultiaddrError(f"invalid DNS name {name!r}")
    for label in body.split("."):
        if not label or len(label) > 63:
            raise MultiaddrError(f"invalid DNS name {name!r}")
        for ch in label:
            if ch in _DNS_ASCII:
                continue
            if ord(ch) < 0x80 or unicodedata.category(ch)[0] not in "LMN":
                raise MultiaddrError(f"invalid character {ch!r} in DNS name {name!r}")


def _dns_parse(text: str) -> bytes:
    _check_dns_name(text)
    return _encode_utf8(text, "DNS name")


def _dns_check(raw: bytes) -> None:
    _check_dns_name(_utf8(raw, "DNS name"))


def _utf8_format(raw: bytes) -> str:
    return raw.decode("utf-8")


def _check_path(path: str) -> None:
    if len(path) < 2 or path[0] != "/" or path[-1] == "/":
        raise MultiaddrError(f"invalid unix path {path!r}")


def _unix_parse(text: str) -> bytes:
    _check_path(text)
    return _encode_utf8(text, "unix path")


def _unix_check(raw: bytes) -> None:
    _check_path(_utf8(raw, "unix path"))


# /p2p: binary is the bare multihash, text is base58btc (a CIDv1 is read too)


def _p2p_parse(text: str) -> bytes:
    return PeerId.from_string(text).to_bytes()


def _p2p_format(raw: bytes) -> str:
    return str(base58.b58encode(raw).decode("ascii"))


def _p2p_check(raw: bytes) -> None:
    PeerId.from_bytes(raw)


# multibase (certhash) and the base32/base64 helpers


def _check_multihash(raw: bytes) -> None:
    """``uvarint(code) || uvarint(length) || digest`` with exactly ``length`` digest bytes
    (any hash code, as go-multihash ``Decode``)."""
    decoded = varint.decode_uvarint(raw, 0)
    if decoded is not None:
        decoded = varint.decode_uvarint(raw, decoded[1])
    if decoded is None:
        raise MultiaddrError("truncated multihash")
    length, pos = decoded
    if length != len(raw) - pos:
        raise MultiaddrError(f"multihash digest of {len(raw) - pos} bytes, length says {length}")


_B64_STD = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
_B64_URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_B64_I2P = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-~")
_B32_LOWER = frozenset("abcdefghijklmnopqrstuvwxyz234567")
_B32_UPPER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
_B58 = frozenset("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")
_HEX_LOWER = frozenset("0123456789abcdef")
_HEX_UPPER = frozenset("0123456789ABCDEF")


def _b64decode(text: str, alphabet: frozenset[str], altchars: bytes, padded: bool) -> bytes:
    """RFC 4648 base64 with a chosen alphabet and padding exactly as ``padded`` says.  Unused
    trailing bits are ignored, as by go's decoders (go-multiaddr's own test vectors have them)."""
    body = text
    if padded:
        if len(text) % 4:
            raise MultiaddrError("bad base64 padding")
        body = text.rstrip("=")
        if len(text) - len(body) > 2:
            raise MultiaddrError("bad base64 padding")
    if not alphabet.issuperset(body) or len(body) % 4 == 1:
        raise MultiaddrError("invalid base64")
    return base64.b64decode(body + "=" * (-len(body) % 4), altchars=altchars, validate=True)


def _b64encode(data: bytes, altchars: bytes, padded: bool) -> str:
    out = base64.b64encode(data, altchars=altchars).decode("ascii")
    return out if padded else out.rstrip("=")


def _b32decode(body: str, alphabet: frozenset[str]) -> bytes:
    """Unpadded RFC 4648 base32 in one case; unused trailing bits ignored (as go)."""
    if not alphabet.issuperset(body) or len(body) % 8 in (1, 3, 6):
        raise MultiaddrError("invalid base32")
    return base64.b32decode(body.upper() + "=" * (-len(body) % 8))


def _multibase_decode(text: str) -> bytes:
    """The multibase prefixes go-multiaddr peers use for certhashes: base64url (``u``, and
    padded ``U``), base64 (``m``/``M``), base58btc (``z``), base32 (``b``/``B``), base16
    (``f``/``F``)."""
    if len(text) < 2:
        raise MultiaddrError(f"invalid multibase text {text!r}")
    prefix, body = text[0], text[1:]
    if prefix in "uU":
        return _b64decode(body, _B64_URL, b"-_", padded=prefix == "U")
    if prefix in "mM":
        return _b64decode(body, _B64_STD, b"+/", padded=prefix == "M")
    if prefix == "z":
        if not _B58.issuperset(body):
            raise MultiaddrError("invalid base58btc")
        return bytes(base58.b58decode(body))
    if prefix == "b":
        return _b32decode(body, _B32_LOWER)
    if prefix == "B":
        return _b32decode(body, _B32_UPPER)
    if prefix in "fF":
        if not (_HEX_LOWER if prefix == "f" else _HEX_UPPER).issuperset(body) or len(body) % 2:
            raise MultiaddrError("invalid base16")
        return bytes.fromhex(body)
    raise MultiaddrError(f"unsupported multibase prefix {prefix!r}")


def _certhash_parse(text: str) -> bytes:
    raw = _multibase_decode(text)
    _check_multihash(raw)
    return raw


def _certhash_format(raw: bytes) -> str:
    return "u" + _b64encode(raw, b"-_", padded=False)  # base64url, as go prints it


# /http-path: percent-encoded (go url.QueryEscape / QueryUnescape)

_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
_HEXDIGITS = frozenset("0123456789abcdefABCDEF")


def _http_path_parse(text: str) -> bytes:
    out = bytearray()
    i, size = 0, len(text)
    while i < size:
        ch = text[i]
        if ch == "%":
            pair = text[i + 1 : i + 3]
            if len(pair) != 2 or not _HEXDIGITS.issuperset(pair):
                raise MultiaddrError(f"bad percent-escape in http-path {text!r}")
            out.append(int(pair, 16))
            i += 3
        else:
            out += b" " if ch == "+" else _encode_utf8(ch, "http-path")
            i += 1
    return bytes(out)


def _http_path_format(raw: bytes) -> str:
    return "".join(chr(b) if b in _UNRESERVED else "+" if b == 0x20 else f"%{b:02X}" for b in raw)


# Tor and I2P


def _onion_parse(text: str, host_chars: int, host_bytes: int) -> bytes:
    host, sep, port_text = text.partition(":")
    if not sep or len(host) != host_chars or not _B32_LOWER.issuperset(host.lower()):
        raise MultiaddrError(f"invalid onion address {text!r}")
    port = _uint(port_text, 16, "onion port")
    if port == 0:
        raise MultiaddrError(f"invalid onion port in {text!r}")
    raw = base64.b32decode(host.upper())
    return raw[:host_bytes] + port.to_bytes(2, "big")


def _onion_format(raw: bytes) -> str:
    host = base64.b32encode(raw[:-2]).decode("ascii").rstrip("=").lower()
    return f"{host}:{int.from_bytes(raw[-2:], 'big')}"


def _onion_check(raw: bytes) -> None:
    if raw[-2:] == b"\x00\x00":
        raise MultiaddrError("onion port must not be 0")


def _garlic64_check(raw: bytes) -> None:
    if len(raw) < 386:
        raise MultiaddrError(f"garlic64 address of {len(raw)} bytes (at least 386)")


def _garlic64_parse(text: str) -> bytes:
    raw = _b64decode(text, _B64_I2P, b"-~", padded=True)
    _garlic64_check(raw)
    return raw


def _garlic32_check(raw: bytes) -> None:
    if len(raw) != 32 and len(raw) < 35:
        raise MultiaddrError(f"garlic32 address of {len(raw)} bytes (32, or at least 35)")


def _garlic32_parse(text: str) -> bytes:
    raw = _b32decode(text, _B32_LOWER)
    _garlic32_check(raw)
    return raw


def _garlic32_format(raw: bytes) -> str:
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


_PORT = (_port_parse, _uint_format, _no_check)
_DNS = (_dns_parse, _utf8_format, _dns_check)

_CODECS: dict[str, tuple[_Parse, _Format, _Check]] = {
    "ip4": (_ip4_parse, _ip4_format, _no_check),
    "ip6": (_ip6_parse, _ip6_format, _no_check),
    "ip6zone": (_zone_parse, _utf8_format, _zone_check),
    "ipcidr": (_ipcidr_parse, _ipcidr_format, _no_check),
    "tcp": _PORT,
    "udp": _PORT,
    "dccp": _PORT,
    "sctp": _PORT,
    "dns": _DNS,
    "dns4": _DNS,
    "dns6": _DNS,
    "dnsaddr": _DNS,
    "sni": _DNS,
    "unix": (_unix_parse, _utf8_format, _unix_check),
    "p2p": (_p2p_parse, _p2p_format, _p2p_check),
    "onion": (lambda t: _onion_parse(t, 16, 10), _onion_format, _onion_check),
    "onion3": (lambda t: _onion_parse(t, 56, 35), _onion_format, _onion_check),
    "garlic64": (
        _garlic64_parse,
        lambda raw: _b64encode(raw, b"-~", padded=True),
        _garlic64_check,
    ),
    "garlic32": (_garlic32_parse, _garlic32_format, _garlic32_check),
    "certhash": (_certhash_parse, _certhash_format, _check_multihash),
    "http-path": (_http_path_parse, _http_path_format, _no_check),
    "memory": (_memory_parse, _uint_format, _no_check),
}
_CODEC_BY_CODE: dict[int, tuple[_Parse, _Format, _Check]] = {
    p.code: _CODECS[p.name] for p in PROTOCOLS if p.has_value
}

# --------------------------------------------------------------------------- framing


def _fail(context: str, exc: Exception) -> MultiaddrError:
    if isinstance(exc, MultiaddrError):
        return exc
    return MultiaddrError(f"{context}: {exc}")


def decode_binary(data: bytes) -> tuple[Component, ...]:
    """Split and validate a binary multiaddr (may be empty: the caller decides)."""
    out: list[Component] = []
    pos, size = 0, len(data)
    path_seen = False
    while pos < size:
        if path_seen:
            raise MultiaddrError("a component follows a path protocol (/unix must be last)")
        try:
            decoded = varint.decode_uvarint(data, pos)
        except Libp2pError as exc:
            raise _fail(f"bad protocol code at byte {pos}", exc) from exc
        if decoded is None:
            raise MultiaddrError(f"truncated protocol code at byte {pos}")
        code, pos = decoded
        proto = protocol_with_code(code)
        if proto.size == 0:
            out.append(Component(code, proto.name, b""))
            continue
        if proto.size > 0:
            length = proto.size // 8
        else:
            try:
                decoded = varint.decode_uvarint(data, pos)
            except Libp2pError as exc:
                raise _fail(f"/{proto.name}: bad length prefix", exc) from exc
            if decoded is None:
                raise MultiaddrError(f"/{proto.name}: truncated length prefix")
            length, pos = decoded
            if length == 0:
                raise MultiaddrError(f"/{proto.name}: empty value")
        end = pos + length
        if end > size:
            raise MultiaddrError(f"/{proto.name}: value needs {length} bytes, {size - pos} left")
        value = data[pos:end]
        pos = end
        try:
            _CODEC_BY_CODE[code][2](value)
        except (ValueError, Libp2pError) as exc:
            raise _fail(f"invalid /{proto.name} value", exc) from exc
        out.append(Component(code, proto.name, value))
        path_seen = proto.path
    return tuple(out)


def parse_text(text: str) -> tuple[Component, ...]:
    """Split and validate a text multiaddr (the caller bounds its length)."""
    if not text.startswith("/"):
        raise MultiaddrError(f"multiaddr text must start with '/': {text!r}")
    parts = text.rstrip("/").split("/")[1:]
    if not parts:
        raise MultiaddrError("empty multiaddr")
    out: list[Component] = []
    i = 0
    while i < len(parts):
        name = parts[i]
        i += 1
        if not name:
            raise MultiaddrError(f"empty protocol name in {text!r}")
        proto = protocol_with_name(name)
        if proto.size == 0:
            out.append(Component(proto.code, proto.name, b""))
            continue
        if proto.path:  # the rest of the text is the path, with its leading "/"
            value = "/" + "/".join(parts[i:])
            i = len(parts)
            if value == "/":
                raise MultiaddrError(f"/{name} needs a path in {text!r}")
        else:
            if i >= len(parts) or not parts[i]:
                raise MultiaddrError(f"/{name} needs a value in {text!r}")
            value = parts[i]
            i += 1
        try:
            raw = _CODEC_BY_CODE[proto.code][0](value)
        except (ValueError, Libp2pError) as exc:
            raise _fail(f"invalid /{name} value {value!r}", exc) from exc
        if proto.size > 0:
            if len(raw) != proto.size // 8:  # the codecs guarantee it; defensive
                raise MultiaddrError(f"/{name}: bad value length {len(raw)}")
        elif not raw:
            raise MultiaddrError(f"/{name}: empty value")
        out.append(Component(proto.code, proto.name, raw))
    return tuple(out)


def encode_components(parts: Iterable[Component]) -> bytes:
    """The binary form of already validated components."""
    out = bytearray()
    for code, _name, value in parts:
        out += varint.encode_uvarint(code)
        if _BY_CODE[code].size < 0:
            out += varint.encode_uvarint(len(value))
        out += value
    return bytes(out)


def format_value(comp: Component) -> str:
    """The canonical text of a validated component's value (``""`` for a flag)."""
    if not comp.value:
        return ""
    return _CODEC_BY_CODE[comp.code][1](comp.value)


def format_components(parts: Iterable[Component]) -> str:
    """The canonical text form of already validated components."""
    out: list[str] = []
    for comp in parts:
        out.append("/" + comp.name)
        if comp.value:
            value = format_value(comp)
            out.append(value if _BY_CODE[comp.code].path else "/" + value)
    return "".join(out)
