"""libp2p TLS certificates (``aiolibp2p.proto.tls.certificate``).

Spec: libp2p/specs ``tls/tls.md``.  The four test vectors are copied from that document's
"Test vectors" section (libp2p/specs commit 7740c07).
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from aiolibp2p.core.crypto import KeyType, PrivateKey, generate_private_key
from aiolibp2p.core.errors import CertificateError, HandshakeError, LocalProtocolError
from aiolibp2p.core.peer import PeerId
from aiolibp2p.proto.tls.certificate import (
    ALPN,
    CLOCK_SKEW_ALLOWANCE,
    EXTENSION_OID,
    SIGNATURE_PREFIX,
    alpn_protocols,
    build_certificate,
    decode_signed_key,
    encode_signed_key,
    muxer_from_alpn,
    select_alpn,
    subject_public_key_info,
    verify_certificate,
)

NOW = 1_790_000_000.0  # 2026-09-21
YAMUX, MPLEX = "/yamux/1.0.0", "/mplex/6.7.0"

# libp2p/specs tls/tls.md, "Test vectors" 1-4 (notBefore 1975, notAfter 4096).
VECTOR_ED25519 = (
    "308201ae30820156a0030201020204499602d2300a06082a8648ce3d040302302031123010060355040a13096c"
    "69627032702e696f310a300806035504051301313020170d3735303130313133303030305a180f343039363031"
    "30313133303030305a302031123010060355040a13096c69627032702e696f310a300806035504051301313059"
    "301306072a8648ce3d020106082a8648ce3d030107034200040c901d423c831ca85e27c73c263ba132721bb9d7"
    "a84c4f0380b2a6756fd601331c8870234dec878504c174144fa4b14b66a651691606d8173e55bd37e381569ea3"
    "7c307a3078060a2b0601040183a25a0101046a3068042408011220a77f1d92fedb59dddaea5a1c4abd1ac2fbde"
    "7d7b879ed364501809923d7c11b90440d90d2769db992d5e6195dbb08e706b6651e024fda6cfb8846694a43551"
    "9941cac215a8207792e42849cccc6cd8136c6e4bde92a58c5e08cfd4206eb5fe0bf909300a06082a8648ce3d04"
    "03020346003043021f50f6b6c52711a881778718238f650c9fb48943ae6ee6d28427dc6071ae55e702203625f1"
    "16a7a454db9c56986c82a25682f7248ea1cb764d322ea983ed36a31b77"
)
VECTOR_ECDSA = (
    "308201f63082019da0030201020204499602d2300a06082a8648ce3d040302302031123010060355040a13096c"
    "69627032702e696f310a300806035504051301313020170d3735303130313133303030305a180f343039363031"
    "30313133303030305a302031123010060355040a13096c69627032702e696f310a300806035504051301313059"
    "301306072a8648ce3d020106082a8648ce3d030107034200040c901d423c831ca85e27c73c263ba132721bb9d7"
    "a84c4f0380b2a6756fd601331c8870234dec878504c174144fa4b14b66a651691606d8173e55bd37e381569ea3"
    "81c23081bf3081bc060a2b0601040183a25a01010481ad3081aa045f0803125b3059301306072a8648ce3d0201"
    "06082a8648ce3d03010703420004bf30511f909414ebdd3242178fd290f093a551cf75c973155de0bb5a96fedf"
    "6cb5d52da7563e794b512f66e60c7f55ba8a3acf3dd72a801980d205e8a1ad29f2044730450220064ea8124774"
    "caf8f50e57f436aa62350ce652418c019df5d98a3ac666c9386a022100aa59d704a931b5f72fb9222cb6cc51f9"
    "54d04a4e2e5450f8805fe8918f71eaae300a06082a8648ce3d04030203470030440220799395b0b6c1e940a7e4"
    "484705f610ab51ed376f19ff9d7c16757cfbf61b8d4302206205c03fbb0f95205c779be86581d3e31c01871ad5"
    "d1f3435bcf375cb0e5088a"
)
VECTOR_SECP256K1 = (
    "308201ba3082015fa0030201020204499602d2300a06082a8648ce3d040302302031123010060355040a13096c"
    "69627032702e696f310a300806035504051301313020170d3735303130313133303030305a180f343039363031"
    "30313133303030305a302031123010060355040a13096c69627032702e696f310a300806035504051301313059"
    "301306072a8648ce3d020106082a8648ce3d030107034200040c901d423c831ca85e27c73c263ba132721bb9d7"
    "a84c4f0380b2a6756fd601331c8870234dec878504c174144fa4b14b66a651691606d8173e55bd37e381569ea3"
    "8184308181307f060a2b0601040183a25a01010471306f0425080212210206dc6968726765b820f050263ecec"
    "f7f71e4955892776c0970542efd689d2382044630440220145e15a991961f0d08cd15425bb95ec93f6ffa03c5a"
    "385eedc34ecf464c7a8ab022026b3109b8a3f40ef833169777eb2aa337cfb6282f188de0666d1bcec2a4690dd"
    "300a06082a8648ce3d0403020349003046022100e1a217eeef9ec9204b3f774a08b70849646b6a1e6b8b27f93d"
    "c00ed58545d9fe022100b00dafa549d0f03547878338c7b15e7502888f6d45db387e5ae6b5d46899cef0"
)
VECTOR_INVALID = (
    "308201f73082019da0030201020204499602d2300a06082a8648ce3d040302302031123010060355040a13096c"
    "69627032702e696f310a300806035504051301313020170d3735303130313133303030305a180f343039363031"
    "30313133303030305a302031123010060355040a13096c69627032702e696f310a300806035504051301313059"
    "301306072a8648ce3d020106082a8648ce3d030107034200040c901d423c831ca85e27c73c263ba132721bb9d7"
    "a84c4f0380b2a6756fd601331c8870234dec878504c174144fa4b14b66a651691606d8173e55bd37e381569ea3"
    "81c23081bf3081bc060a2b0601040183a25a01010481ad3081aa045f0803125b3059301306072a8648ce3d0201"
    "06082a8648ce3d03010703420004bf30511f909414ebdd3242178fd290f093a551cf75c973155de0bb5a96fedf"
    "6cb5d52da7563e794b512f66e60c7f55ba8a3acf3dd72a801980d205e8a1ad29f204473045022100bb6e03577b"
    "7cc7a3cd1558df0da2b117dfdcc0399bc2504ebe7de6f65cade72802206de96e2a5be9b6202adba24ee0362e49"
    "0641ac45c240db71fe955f2c5cf8df6e300a06082a8648ce3d0403020348003045022100e847f267f43717358f"
    "850355bdcabbefb2cfbf8a3c043b203a14788a092fe8db022027c1d04a2d41fd6b57a7e8b3989e470325de4406"
    "e52e084e34a3fd56eef0d0df"
)


@pytest.fixture(scope="module")
def keys() -> dict[KeyType, PrivateKey]:
    return {kt: generate_private_key(kt) for kt in KeyType}


@pytest.fixture(scope="module")
def cert_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def custom_cert(
    cert_key: ec.EllipticCurvePrivateKey,
    *,
    extension: bytes | None = None,
    critical: bool = False,
    extra: list[tuple[x509.ExtensionType, bool]] = (),  # type: ignore[assignment]
    not_before: float = NOW - 60,
    not_after: float = NOW + 86400,
    signer: Any = None,
) -> bytes:
    """A certificate built by hand, to exercise the checks our builder never violates."""
    name = x509.Name([x509.NameAttribute(NameOID.SERIAL_NUMBER, "1")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(cert_key.public_key())
        .serial_number(1)
        .not_valid_before(datetime.datetime.fromtimestamp(not_before, tz=datetime.timezone.utc))
        .not_valid_after(datetime.datetime.fromtimestamp(not_after, tz=datetime.timezone.utc))
    )
    if extension is not None:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(EXTENSION_OID, extension), critical=critical
        )
    for ext, crit in extra:
        builder = builder.add_extension(ext, critical=crit)
    return der(builder.sign(signer or cert_key, hashes.SHA256()))


def signed_key_for(identity: PrivateKey, cert_key: ec.EllipticCurvePrivateKey) -> bytes:
    spki = cert_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return encode_signed_key(
        identity.public_key().to_protobuf(), identity.sign(SIGNATURE_PREFIX + spki)
    )


# ----------------------------------------------------------------------------- vectors


@pytest.mark.parametrize(
    ("hex_cert", "peer_id"),
    [
        (VECTOR_ED25519, "12D3KooWM6CgA9iBFZmcYAHA6A2qvbAxqfkmrYiRQuz3XEsk4Ksv"),
        (VECTOR_ECDSA, "QmfXbAwNjJLXfesgztEHe8HwgVDCMMpZ9Eax1HYq6hn9uE"),
        (VECTOR_SECP256K1, "16Uiu2HAkutTMoTzDw1tCvSRtu6YoixJwS46S1ZFxW8hSx9fWHiPs"),
    ],
    ids=["ed25519", "ecdsa", "secp256k1"],
)
def test_spec_vectors(hex_cert: str, peer_id: str) -> None:
    key = verify_certificate(bytes.fromhex(hex_cert), now=NOW)
    assert str(PeerId.from_public_key(key)) == peer_id


def test_spec_invalid_vector() -> None:
    with pytest.raises(CertificateError, match="signature"):
        verify_certificate(bytes.fromhex(VECTOR_INVALID), now=NOW)


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("key_type", list(KeyType), ids=lambda kt: kt.name)
def test_round_trip_every_key_type(
    keys: dict[KeyType, PrivateKey], cert_key: ec.EllipticCurvePrivateKey, key_type: KeyType
) -> None:
    identity = keys[key_type]
    cert = build_certificate(identity, cert_key, now=NOW, serial=0xC0FFEE)
    assert cert.serial_number == 0xC0FFEE
    assert cert.not_valid_before_utc.timestamp() == NOW - CLOCK_SKEW_ALLOWANCE
    assert cert.not_valid_after_utc.timestamp() > NOW + 99 * 365 * 86400
    ext = cert.extensions.get_extension_for_oid(EXTENSION_OID)
    assert not ext.critical
    # The only extension: js-libp2p's @libp2p/tls 3.1.10 takes extensions[0] as the libp2p one.
    assert [e.oid for e in cert.extensions] == [EXTENSION_OID]
    for form in (cert, der(cert)):
        key = verify_certificate(form, now=NOW)
        assert key == identity.public_key()
        assert PeerId.from_public_key(key) == PeerId.from_public_key(identity.public_key())


def test_signature_covers_raw_spki(
    keys: dict[KeyType, PrivateKey], cert_key: ec.EllipticCurvePrivateKey
) -> None:
    cert = build_certificate(keys[KeyType.Ed25519], cert_key, now=NOW, serial=1)
    spki = cert_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert subject_public_key_info(cert) == spki
    ext = cert.extensions.get_extension_for_oid(EXTENSION_OID).value
    assert isinstance(ext, x509.UnrecognizedExtension)
    _, sig = decode_signed_key(ext.value)
    assert keys[KeyType.Ed25519].public_key().verify(SIGNATURE_PREFIX + spki, sig)


def test_validity_window(
    keys: dict[KeyType, PrivateKey], cert_key: ec.EllipticCurvePrivateKey
) -> None:
    cert = build_certificate(keys[KeyType.Ed25519], cert_key, now=NOW, serial=7, lifetime=100)
    verify_certificate(cert, now=NOW - CLOCK_SKEW_ALLOWANCE)
    verify_certificate(cert, now=NOW + 100)
    with pytest.raises(CertificateError, match="not yet valid"):
        verify_certificate(cert, now=NOW - CLOCK_SKEW_ALLOWANCE - 1)
    with pytest.raises(CertificateError, match="expired"):
        verify_certificate(cert, now=NOW + 101)


def test_expired_and_not_yet_valid_by_hand(
    keys: dict[KeyType, PrivateKey], cert_key: ec.EllipticCurvePrivateKey
) -> None:
    ext = signed_key_for(keys[KeyType.Ed25519], cert_key)
    expired = custom_cert(cert_key, extension=ext, not_before=NOW - 7200, not_after=NOW - 3600)
    future = custom_cert(cert_key, extension=ext, not_before=NOW + 3600, not_after=NOW + 7200)
    with pytest.raises(CertificateError, match="expired"):
        verify_certificate(expired, now=NOW)
    with pytest.raises(CertificateError, match="not yet valid"):
        verify_certificate(future, now=NOW)
    assert verify_certificate(custom_cert(cert_key, extension=ext), now=NOW)


# ----------------------------------------------------------------------------- bad certificates


def test_missing_extension(cert_key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(CertificateError, match="no libp2p Public Key Extension"):
        verify_certificate(custom_cert(cert_key), now=NOW)


def test_critical_extension_is_accepted(
    keys: dict[KeyType, PrivateKey], cert_key: ec.EllipticCurvePrivateKey
) -> None:
    ext = signed_key_for(keys[KeyType.Secp256k1], cert_key)
    key = verify_certificate(custom_cert(cert_key, extension=ext, critical=True), now=NOW)
    assert key == keys[KeyType.Secp256k1].public_key()


def test_unknown_extensions(
    keys: dict[KeyType, PrivateKey], cert_key: ec.EllipticCurvePrivateKey
) -> None:
    ext = signed_key_for(keys[KeyType.Ed25519], cert_key)
    unknown = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00")
    ok = custom_cert(cert_key, extension=ext, extra=[(unknown, False)])
    assert verify_certificate(ok, now=NOW) == keys[KeyType.Ed25519].public_key()
    bad = custom_cert(cert_key, extension=ext, extra=[(unknown, True)])
    with pytest.raises(CertificateError, match="unknown critical extension"):
        verify_certificate(bad, now=NOW)
    bc = x509.BasicConstraints(ca=False, path_length=None)
    assert verify_certificate(custom_cert(cert_key, extension=ext, extra=[(bc, True)]), now=NOW)


def test_wrong_self_signature(
    keys: dict[KeyType, PrivateKey], cert_key: ec.EllipticCurvePrivateKey
) -> None:
    ext = signed_key_for(keys[KeyType.Ed25519], cert_key)
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(CertificateError, match="self-signature"):
        verify_certificate(custom_cert(cert_key, extension=ext, signer=other), now=NOW)


def test_host_signature_over_other_key(
    keys: dict[KeyType, PrivateKey], cert_key: ec.EllipticCurvePrivateKey
) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    ext = signed_key_for(keys[KeyType.Ed25519], other)  # signs a different certificate key
    with pytest.raises(CertificateError, match="does not verify"):
        verify_certificate(custom_cert(cert_key, extension=ext), now=NOW)


def test_host_signature_by_other_identity(
    keys: dict[KeyType, PrivateKey], cert_key: ec.EllipticCurvePrivateKey
) -> None:
    good = signed_key_for(keys[KeyType.Ed25519], cert_key)
    _, sig = decode_signed_key(good)
    forged = encode_signed_key(keys[KeyType.ECDSA].public_key().to_protobuf(), sig)
    with pytest.raises(CertificateError, match="does not verify"):
        verify_certificate(custom_cert(cert_key, extension=forged), now=NOW)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda sk: sk + b"\x00",  # trailing garbage after SignedKey
        lambda sk: sk[:-1],  # truncated
        lambda sk: b"\x31" + sk[1:],  # SET instead of SEQUENCE
        lambda sk: b"",
        lambda sk: b"\x30\x00",  # no fields
    ],
    ids=["trailing", "truncated", "set", "empty", "no-fields"],
)
def test_malformed_signed_key(
    keys: dict[KeyType, PrivateKey], cert_key: ec.EllipticCurvePrivateKey, mutate: Any
) -> None:
    ext = mutate(signed_key_for(keys[KeyType.Ed25519], cert_key))
    with pytest.raises(CertificateError):
        verify_certificate(custom_cert(cert_key, extension=ext), now=NOW)


def test_signed_key_with_third_field_and_bad_key(
    keys: dict[KeyType, PrivateKey], cert_key: ec.EllipticCurvePrivateKey
) -> None:
    pub, sig = decode_signed_key(signed_key_for(keys[KeyType.Ed25519], cert_key))
    three = b"\x30" + bytes([len(pub) + len(sig) + 6]) + b"\x04" + bytes([len(pub)]) + pub
    three += b"\x04" + bytes([len(sig)]) + sig + b"\x04\x00"
    with pytest.raises(CertificateError, match="more than two"):
        decode_signed_key(three)
    # A non-canonical protobuf key (trailing byte) is rejected.
    bad_key = encode_signed_key(pub + b"\x00", sig)
    with pytest.raises(CertificateError, match="host key"):
        verify_certificate(custom_cert(cert_key, extension=bad_key), now=NOW)
    # Inner element with a non-minimal long-form length.
    with pytest.raises(CertificateError, match="non-minimal"):
        decode_signed_key(b"\x30\x06\x04\x81\x01\x00\x04\x00")


def test_signed_key_round_trip_long() -> None:
    pub, sig = bytes(range(256)) * 3, b"s" * 70000
    assert decode_signed_key(encode_signed_key(pub, sig)) == (pub, sig)


def test_oversized_and_wrong_types() -> None:
    with pytest.raises(CertificateError, match="exceeds"):
        verify_certificate(b"\x30" * 20000, now=NOW)
    with pytest.raises(LocalProtocolError):
        verify_certificate("cert", now=NOW)  # type: ignore[arg-type]
    assert issubclass(CertificateError, HandshakeError)


def test_build_argument_checks(
    keys: dict[KeyType, PrivateKey], cert_key: ec.EllipticCurvePrivateKey
) -> None:
    identity = keys[KeyType.Ed25519]
    for serial in (0, -1, 1 << 159, True, 1.5):
        with pytest.raises(LocalProtocolError):
            build_certificate(identity, cert_key, now=NOW, serial=serial)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        build_certificate(identity, cert_key, now=NOW, serial=1, lifetime=0)
    with pytest.raises(LocalProtocolError):
        build_certificate(identity, cert_key, now=NOW, serial=1, lifetime=1e13)
    with pytest.raises(LocalProtocolError):
        build_certificate(cert_key, cert_key, now=NOW, serial=1)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        build_certificate(identity, identity, now=NOW, serial=1)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- hypothesis

_VALID_DER = bytes.fromhex(VECTOR_ED25519)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_random_bytes_raise_certificate_error(data: bytes) -> None:
    with pytest.raises(CertificateError):
        verify_certificate(data, now=NOW)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=len(_VALID_DER) - 1))
def test_truncated_der(length: int) -> None:
    with pytest.raises(CertificateError):
        verify_certificate(_VALID_DER[:length], now=NOW)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=len(_VALID_DER) - 1), st.integers(1, 255))
def test_flipped_byte(position: int, xor: int) -> None:
    data = bytearray(_VALID_DER)
    data[position] ^= xor
    try:
        key = verify_certificate(bytes(data), now=NOW)
    except CertificateError:
        return
    # A few bytes (e.g. the outer algorithm's NULL-free encoding) may not be covered by any
    # signature; whatever passes must still prove the same host key.
    assert (
        str(PeerId.from_public_key(key)) == "12D3KooWM6CgA9iBFZmcYAHA6A2qvbAxqfkmrYiRQuz3XEsk4Ksv"
    )


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_decode_signed_key_random(data: bytes) -> None:
    try:
        pub, sig = decode_signed_key(data)
    except CertificateError:
        return
    assert encode_signed_key(pub, sig) == data  # only canonical DER is accepted


@given(st.binary(max_size=600), st.binary(max_size=600))
def test_signed_key_round_trip(pub: bytes, sig: bytes) -> None:
    encoded = encode_signed_key(pub, sig)
    assert decode_signed_key(encoded) == (pub, sig)
    for cut in range(len(encoded)):
        with pytest.raises(CertificateError):
            decode_signed_key(encoded[:cut])


# ----------------------------------------------------------------------------- ALPN


def test_alpn_helpers() -> None:
    assert ALPN == "libp2p"
    assert alpn_protocols([YAMUX, MPLEX]) == [YAMUX, MPLEX, "libp2p"]
    assert alpn_protocols() == ["libp2p"]
    for bad in ([YAMUX, YAMUX], [""], ["libp2p"], ["x" * 300]):
        with pytest.raises(LocalProtocolError):
            alpn_protocols(bad)
    # The server follows the client's order.
    assert select_alpn([MPLEX.encode(), YAMUX.encode(), b"libp2p"], [YAMUX, MPLEX]) == MPLEX
    assert select_alpn([b"\xff", YAMUX.encode(), b"libp2p"], [MPLEX]) == "libp2p"
    assert select_alpn([b"h2", b"http/1.1"], [YAMUX]) is None
    assert select_alpn([], [YAMUX]) is None
    assert muxer_from_alpn(b"/yamux/1.0.0") == YAMUX
    assert muxer_from_alpn("libp2p") is None
    assert muxer_from_alpn(None) is None
    with pytest.raises(CertificateError):
        muxer_from_alpn(b"\xff")


@pytest.mark.parametrize("serial", ["020100", "020400000000", "0204c99602d2"], ids=str)
def test_non_positive_serial(serial: str) -> None:
    data = bytes.fromhex(VECTOR_ED25519.replace("0204499602d2", serial, 1))
    if len(serial) != 12:  # 3 bytes shorter: fix the Certificate and TBSCertificate lengths
        data = bytes.fromhex(
            VECTOR_ED25519.replace("308201ae30820156", "308201ab30820153", 1).replace(
                "0204499602d2", serial, 1
            )
        )
    with pytest.raises(CertificateError, match="serialNumber"):
        verify_certificate(data, now=NOW)
