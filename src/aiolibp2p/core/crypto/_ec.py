"""Shared helpers for the two elliptic-curve key types (secp256k1 and ECDSA/NIST)."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from aiolibp2p.core.crypto.keys import as_bytes

__all__ = ["SIGNATURE_ALGORITHM", "sign_der", "verify_der"]


def _algorithm() -> ec.ECDSA:
    try:  # RFC 6979 deterministic nonces when this cryptography has them (43+)
        return ec.ECDSA(hashes.SHA256(), deterministic_signing=True)  # type: ignore[call-arg,unused-ignore]
    except TypeError:  # pragma: no cover - older cryptography
        return ec.ECDSA(hashes.SHA256())


#: ECDSA over SHA-256 of the message (every curve; go-libp2p does the same for P-384/P-521).
SIGNATURE_ALGORITHM = _algorithm()
_VERIFY_ALGORITHM = ec.ECDSA(hashes.SHA256())


def sign_der(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """A DER ``ECDSA-Sig-Value`` over ``SHA-256(data)``."""
    return key.sign(as_bytes(data), SIGNATURE_ALGORITHM)


def verify_der(key: ec.EllipticCurvePublicKey, data: bytes, signature: bytes) -> bool:
    """Verify a DER signature; ``False`` for anything malformed (OpenSSL insists on strict DER)."""
    try:
        key.verify(as_bytes(signature), as_bytes(data), _VERIFY_ALGORITHM)
    except Exception:
        return False
    return True
