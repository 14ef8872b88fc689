"""libp2p TLS certificates: build and verify the self-signed certificate that carries a host key.

Spec: libp2p/specs ``tls/tls.md`` (r0) and ``connections/inlined-muxer-negotiation.md``.

A peer does not sign its TLS certificate with its host (identity) key.  It makes a self-signed
certificate with a separate certificate key (here always ECDSA; P-256 is what the spec and the
other implementations use) and proves ownership of its host key in the *libp2p Public Key
Extension* (OID ``1.3.6.1.4.1.53594.1.1``)::

    SignedKey ::= SEQUENCE {
      publicKey OCTET STRING,   -- the protobuf-encoded libp2p PublicKey
      signature OCTET STRING    -- host key's signature of
    }                           -- b"libp2p-tls-handshake:" + certificate SubjectPublicKeyInfo DER

Nothing here reads the clock or draws randomness: ``now`` (seconds since the epoch), the serial
number and the certificate key come from the caller (``net/``).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtensionOID, NameOID

from aiolibp2p.core.crypto import PrivateKey, PublicKey, public_key_from_protobuf
from aiolibp2p.core.errors import CertificateError, KeyDecodeError, LocalProtocolError
from aiolibp2p.core.lru import Lru

__all__ = [
    "ALPN",
    "CERTIFICATE_LIFETIME",
    "CLOCK_SKEW_ALLOWANCE",
    "EXTENSION_OID",
    "MAX_CERTIFICATE_SIZE",
    "SIGNATURE_PREFIX",
    "VerifiedCertificates",
    "alpn_protocols",
    "build_certificate",
    "decode_signed_key",
    "encode_signed_key",
    "muxer_from_alpn",
    "select_alpn",
    "subject_public_key_info",
    "verify_certificate",
]

#: The libp2p Public Key Extension (IANA PEN 53594 allocated to libp2p).
EXTENSION_OID: Final = x509.ObjectIdentifier("1.3.6.1.4.1.53594.1.1")
#: What the host key signs, followed by the certificate's SubjectPublicKeyInfo DER.
SIGNATURE_PREFIX: Final = b"libp2p-tls-handshake:"
#: The ALPN protocol id of libp2p TLS; always the last entry of an ALPN list.
ALPN: Final = "libp2p"
#: Default certificate lifetime in seconds: 100 years, as go-libp2p uses.  Certificates may be
#: reused for many connections; a short lifetime buys nothing since the host key proves identity.
CERTIFICATE_LIFETIME: Final = 100 * 365.25 * 86400.0
#: ``notBefore`` is set this many seconds before ``now`` so a peer whose clock runs behind ours
#: still accepts the certificate.
CLOCK_SKEW_ALLOWANCE: Final = 3600.0
#: The largest certificate DER :func:`verify_certificate` accepts (an 8192-bit RSA host key
#: makes a certificate of about 2.5 KiB).
MAX_CERTIFICATE_SIZE: Final = 16384

#: Extensions whose semantics we implement (or that do not restrict a self-signed leaf), so a
#: peer may mark them critical.  Any other critical extension aborts the handshake.
_UNDERSTOOD_EXTENSIONS: Final = frozenset(
    {
        EXTENSION_OID,
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.SUBJECT_KEY_IDENTIFIER,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
    }
)

_MAX_SERIAL: Final = (1 << 159) - 1
_TAG_INTEGER: Final = 0x02
_TAG_SEQUENCE: Final = 0x30
_TAG_OCTET_STRING: Final = 0x04
_TAG_EXPLICIT_0: Final = 0xA0


# -------------------------------------------------------------------------- minimal DER


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes((length,))
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(raw),)) + raw


def _der(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + _der_length(len(content)) + content


def _read_tlv(buf: bytes, pos: int, end: int, what: str) -> tuple[int, int, int]:
    """Read one DER element in ``buf[pos:end]``: ``(tag, content_start, content_end)``.

    Only single-byte tags and minimal definite lengths (DER) are accepted.
    """
    if pos + 2 > end:
        raise CertificateError(f"{what}: truncated DER element")
    tag = buf[pos]
    if tag & 0x1F == 0x1F:
        raise CertificateError(f"{what}: multi-byte DER tags are not used here")
    first = buf[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4:
            raise CertificateError(f"{what}: unsupported DER length form")
        if pos + count > end:
            raise CertificateError(f"{what}: truncated DER length")
        raw = buf[pos : pos + count]
        if raw[0] == 0:
            raise CertificateError(f"{what}: non-minimal DER length")
        length = int.from_bytes(raw, "big")
        if length < 0x80:
            raise CertificateError(f"{what}: non-minimal DER length")
        pos += count
    if length > end - pos:
        raise CertificateError(f"{what}: DER element truncated ({end - pos} of {length} bytes)")
    return tag, pos, pos + length


def encode_signed_key(public_key: bytes, signature: bytes) -> bytes:
    """DER-encode ``SignedKey{publicKey, signature}`` (both OCTET STRINGs)."""
    return _der(
        _TAG_SEQUENCE,
        _der(_TAG_OCTET_STRING, bytes(public_key)) + _der(_TAG_OCTET_STRING, bytes(signature)),
    )


def decode_signed_key(data: bytes) -> tuple[bytes, bytes]:
    """Decode a DER ``SignedKey``: ``(publicKey, signature)``.

    Raises :class:`CertificateError` for anything but exactly one SEQUENCE of two OCTET STRINGs
    in minimal DER with nothing after it.
    """
    buf = bytes(data)
    tag, start, end = _read_tlv(buf, 0, len(buf), "SignedKey")
    if tag != _TAG_SEQUENCE:
        raise CertificateError(f"SignedKey: expected a SEQUENCE, got tag 0x{tag:02x}")
    if end != len(buf):
        raise CertificateError(f"SignedKey: {len(buf) - end} trailing bytes")
    fields: list[bytes] = []
    pos = start
    while pos < end:
        if len(fields) == 2:
            raise CertificateError("SignedKey: more than two fields")
        tag, field_start, field_end = _read_tlv(buf, pos, end, "SignedKey field")
        if tag != _TAG_OCTET_STRING:
            raise CertificateError(f"SignedKey: expected an OCTET STRING, got tag 0x{tag:02x}")
        fields.append(buf[field_start:field_end])
        pos = field_end
    if len(fields) != 2:
        raise CertificateError(f"SignedKey: expected two fields, got {len(fields)}")
    return fields[0], fields[1]


def _raw_spki(tbs: bytes) -> bytes:
    """The SubjectPublicKeyInfo element of a TBSCertificate, byte for byte as sent."""
    tag, pos, end = _read_tlv(tbs, 0, len(tbs), "TBSCertificate")
    if tag != _TAG_SEQUENCE or end != len(tbs):
        raise CertificateError("TBSCertificate: not a single SEQUENCE")
    tag, _, field_end = _read_tlv(tbs, pos, end, "TBSCertificate version")
    if tag == _TAG_EXPLICIT_0:
        pos = field_end
    # serialNumber, signature, issuer, validity, subject, then subjectPublicKeyInfo.
    for _ in range(5):
        _, _, pos = _read_tlv(tbs, pos, end, "TBSCertificate field")
    tag, _, field_end = _read_tlv(tbs, pos, end, "SubjectPublicKeyInfo")
    if tag != _TAG_SEQUENCE:
        raise CertificateError("SubjectPublicKeyInfo: expected a SEQUENCE")
    return tbs[pos:field_end]


def _check_serial(der: bytes) -> None:
    """Reject a certificate whose serial number is not positive (RFC 5280 4.1.2.2) before
    ``cryptography`` parses it (it would only warn)."""
    tag, pos, end = _read_tlv(der, 0, len(der), "Certificate")
    if tag != _TAG_SEQUENCE:
        raise CertificateError("Certificate: expected a SEQUENCE")
    tag, pos, end = _read_tlv(der, pos, end, "TBSCertificate")
    if tag != _TAG_SEQUENCE:
        raise CertificateError("TBSCertificate: expected a SEQUENCE")
    tag, _, field_end = _read_tlv(der, pos, end, "TBSCertificate version")
    if tag == _TAG_EXPLICIT_0:
        pos = field_end
    tag, start, field_end = _read_tlv(der, pos, end, "serialNumber")
    if tag != _TAG_INTEGER or start == field_end:
        raise CertificateError("serialNumber: expected an INTEGER")
    if der[start] & 0x80 or not any(der[start:field_end]):
        raise CertificateError("serialNumber: not a positive integer")


def subject_public_key_info(cert: x509.Certificate) -> bytes:
    """The certificate's SubjectPublicKeyInfo DER exactly as encoded in the certificate (what
    the host key signs)."""
    return _raw_spki(cert.tbs_certificate_bytes)


# -------------------------------------------------------------------------- build / verify


def _utc(timestamp: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(int(timestamp), tz=datetime.timezone.utc)


def build_certificate(
    identity: PrivateKey,
    cert_key: ec.EllipticCurvePrivateKey,
    *,
    now: float,
    serial: int,
    lifetime: float = CERTIFICATE_LIFETIME,
) -> x509.Certificate:
    """Build the self-signed libp2p TLS certificate for host key ``identity``.

    ``cert_key`` signs the certificate (use a fresh P-256 key; it need not be related to the
    host key); ``now`` is the current time in seconds since the epoch (``notBefore`` is
    :data:`CLOCK_SKEW_ALLOWANCE` earlier, ``notAfter`` is ``now + lifetime``); ``serial`` is a
    positive integer below ``2**159`` (draw it at random).  Bad arguments raise
    :class:`LocalProtocolError`.
    """
    if not isinstance(identity, PrivateKey):
        raise LocalProtocolError(f"identity must be a PrivateKey, not {type(identity).__name__}")
    if not isinstance(cert_key, ec.EllipticCurvePrivateKey):
        raise LocalProtocolError(
            f"cert_key must be an EllipticCurvePrivateKey, not {type(cert_key).__name__}"
        )
    if isinstance(serial, bool) or not isinstance(serial, int) or not 0 < serial <= _MAX_SERIAL:
        raise LocalProtocolError(f"serial must be an int in [1, 2**159 - 1], not {serial!r}")
    if isinstance(now, bool) or not isinstance(now, (int, float)) or now < CLOCK_SKEW_ALLOWANCE:
        raise LocalProtocolError(f"now must be seconds since the epoch, not {now!r}")
    if isinstance(lifetime, bool) or not isinstance(lifetime, (int, float)) or lifetime <= 0:
        raise LocalProtocolError(f"lifetime must be a positive number of seconds, not {lifetime!r}")
    spki = cert_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signed_key = encode_signed_key(
        identity.public_key().to_protobuf(), identity.sign(SIGNATURE_PREFIX + spki)
    )
    name = x509.Name([x509.NameAttribute(NameOID.SERIAL_NUMBER, str(serial))])
    try:
        not_after = _utc(now + lifetime)
    except (OverflowError, ValueError, OSError):
        raise LocalProtocolError(f"now + lifetime is out of range: {now + lifetime!r}") from None
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(cert_key.public_key())
        .serial_number(serial)
        .not_valid_before(_utc(now - CLOCK_SKEW_ALLOWANCE))
        .not_valid_after(not_after)
        # The only extension, so the first: js-libp2p's @libp2p/tls (3.1.10) reads extensions[0].
        .add_extension(x509.UnrecognizedExtension(EXTENSION_OID, signed_key), critical=False)
    )
    return builder.sign(cert_key, hashes.SHA256())


def verify_certificate(cert: x509.Certificate | bytes, *, now: float) -> PublicKey:
    """Verify a peer's libp2p TLS certificate at time ``now``; return its libp2p host key.

    ``PeerId.from_public_key`` of the result is the authenticated peer id.  Checks, each raising
    :class:`CertificateError`: the DER parses (at most :data:`MAX_CERTIFICATE_SIZE` bytes);
    ``notBefore <= now <= notAfter``; the self-signature verifies; no critical extension we do
    not understand; exactly one libp2p Public Key Extension; its ``SignedKey`` is canonical DER
    holding a canonically encoded libp2p public key; the host key's signature of
    ``"libp2p-tls-handshake:" + SubjectPublicKeyInfo`` verifies.
    """
    return _verify(cert, now=now)[0]


def _verify(cert: x509.Certificate | bytes, *, now: float) -> tuple[PublicKey, float, float]:
    """:func:`verify_certificate`, also returning the validity window (``notBefore``,
    ``notAfter`` in seconds since the epoch)."""
    if isinstance(cert, (bytes, bytearray, memoryview)):
        der = bytes(cert)
        if len(der) > MAX_CERTIFICATE_SIZE:
            raise CertificateError(
                f"certificate of {len(der)} bytes exceeds the limit of {MAX_CERTIFICATE_SIZE}"
            )
        _check_serial(der)
        try:
            cert = x509.load_der_x509_certificate(der)
        except (ValueError, x509.InvalidVersion) as exc:
            raise CertificateError(f"malformed certificate: {exc}") from None
    elif not isinstance(cert, x509.Certificate):
        raise LocalProtocolError(f"cert must be a Certificate or bytes, not {type(cert).__name__}")
    try:
        not_before = cert.not_valid_before_utc.timestamp()
        not_after = cert.not_valid_after_utc.timestamp()
    except ValueError as exc:
        raise CertificateError(f"malformed certificate validity: {exc}") from None
    if now < not_before:
        raise CertificateError(
            f"certificate not yet valid (notBefore {cert.not_valid_before_utc.isoformat()})"
        )
    if now > not_after:
        raise CertificateError(
            f"certificate expired (notAfter {cert.not_valid_after_utc.isoformat()})"
        )
    try:
        cert.verify_directly_issued_by(cert)
    except _CryptoInvalidSignature:
        raise CertificateError("the certificate's self-signature does not verify") from None
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise CertificateError(f"the certificate is not validly self-signed: {exc}") from None
    try:
        extensions = cert.extensions
    except (ValueError, x509.DuplicateExtension, UnsupportedAlgorithm) as exc:
        raise CertificateError(f"malformed certificate extensions: {exc}") from None
    signed_key: bytes | None = None
    for extension in extensions:
        if extension.oid == EXTENSION_OID:
            value = extension.value
            if not isinstance(value, x509.UnrecognizedExtension):  # pragma: no cover
                raise CertificateError("the libp2p Public Key Extension has an unexpected form")
            signed_key = value.value
        elif extension.critical and extension.oid not in _UNDERSTOOD_EXTENSIONS:
            raise CertificateError(
                f"the certificate has an unknown critical extension {extension.oid.dotted_string}"
            )
    if signed_key is None:
        raise CertificateError("the certificate has no libp2p Public Key Extension")
    encoded_key, signature = decode_signed_key(signed_key)
    try:
        host_key = public_key_from_protobuf(encoded_key)
    except KeyDecodeError as exc:
        raise CertificateError(f"the host key in the certificate is invalid: {exc}") from exc
    spki = _raw_spki(cert.tbs_certificate_bytes)
    if not host_key.verify(SIGNATURE_PREFIX + spki, signature):
        raise CertificateError("the host key's signature of the certificate key does not verify")
    return host_key, not_before, not_after


class VerifiedCertificates:
    """Peer certificates that passed :func:`verify_certificate`: a bounded LRU map from the
    certificate's exact DER bytes to its host key and validity window.

    Share one per host between its handshakes: a peer reuses its certificate across
    connections (go-libp2p, and we, keep one per host), so a repeated full handshake with the
    same peer skips parsing and the two signature checks.  A hit still checks the validity
    window at ``now``; any other byte string is verified in full (and then remembered).  The
    TLS handshake itself still proves, on every connection, that the peer holds the
    certificate's key (its CertificateVerify signature).

    Bounded by ``max_entries`` and by ``max_bytes`` of certificate DER in total.
    """

    __slots__ = ("_entries",)

    def __init__(self, max_entries: int = 256, max_bytes: int = 1 << 20) -> None:
        self._entries: Lru[bytes, tuple[PublicKey, float, float]] = Lru(
            max_entries, max_weight=max_bytes, weight=_der_size
        )

    @property
    def max_entries(self) -> int:
        return self._entries.max_entries

    def __len__(self) -> int:
        return len(self._entries)

    def verify(self, cert: x509.Certificate | bytes, *, now: float) -> PublicKey:
        """:func:`verify_certificate` (same checks, result and errors), remembering success."""
        if isinstance(cert, x509.Certificate):
            der = cert.public_bytes(serialization.Encoding.DER)
        elif isinstance(cert, (bytes, bytearray, memoryview)):
            der = bytes(cert)
        else:
            raise LocalProtocolError(
                f"cert must be a Certificate or bytes, not {type(cert).__name__}"
            )
        entry = self._entries.get(der)
        if entry is not None:
            host_key, not_before, not_after = entry
            if not_before <= now <= not_after:
                return host_key
            # Outside its validity window: verify_certificate gives the precise error.
        entry = _verify(cert, now=now)
        self._entries.put(der, entry)
        return entry[0]


def _der_size(der: bytes, _entry: object) -> int:
    return len(der)


# -------------------------------------------------------------------------- ALPN


def alpn_protocols(muxers: Iterable[str] = ()) -> list[str]:
    """Our ALPN list: the stream muxers in order of preference, then ``"libp2p"`` (early muxer
    negotiation; an empty ``muxers`` gives ``["libp2p"]``)."""
    protocols: list[str] = []
    for muxer in muxers:
        if not isinstance(muxer, str) or not muxer or muxer == ALPN:
            raise LocalProtocolError(f"not a muxer protocol id: {muxer!r}")
        if muxer in protocols:
            raise LocalProtocolError(f"muxer {muxer!r} is listed twice")
        if not 0 < len(muxer.encode("utf-8")) < 256:
            raise LocalProtocolError(f"muxer {muxer!r} is too long for ALPN")
        protocols.append(muxer)
    protocols.append(ALPN)
    return protocols


def select_alpn(offered: Sequence[str | bytes], muxers: Iterable[str]) -> str | None:
    """The server's choice among the client's ``offered`` ALPN protocols: the first (client's
    preference) that is one of our ``muxers`` or ``"libp2p"``; ``None`` if there is none (the
    server must then abort the handshake).  Entries that are not UTF-8 are skipped."""
    supported = set(muxers)
    supported.add(ALPN)
    for entry in offered:
        if isinstance(entry, (bytes, bytearray)):
            try:
                name = bytes(entry).decode("utf-8")
            except UnicodeDecodeError:
                continue
        else:
            name = entry
        if name in supported:
            return name
    return None


def muxer_from_alpn(selected: str | bytes | None) -> str | None:
    """The early-negotiated muxer for the negotiated ALPN protocol, or ``None`` when it is
    ``"libp2p"`` or absent (negotiate the muxer with multistream-select after the handshake)."""
    if isinstance(selected, (bytes, bytearray)):
        try:
            selected = bytes(selected).decode("utf-8")
        except UnicodeDecodeError:
            raise CertificateError("the negotiated ALPN protocol is not UTF-8") from None
    if not selected or selected == ALPN:
        return None
    return selected
