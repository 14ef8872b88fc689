"""aiolibp2p.core.crypto: identity keys (Ed25519, secp256k1, ECDSA, RSA) per libp2p/specs
``peer-ids/peer-ids.md``.

Importing this package is cheap: ``cryptography`` is loaded by the per-type modules
(``ed25519``, ``secp256k1``, ``ecdsa``, ``rsa``) on first use.
"""

from __future__ import annotations

from aiolibp2p.core.crypto.keyfile import (
    InsecureKeyFile,
    load_or_create_private_key_file,
    load_private_key_file,
    save_private_key_file,
)
from aiolibp2p.core.crypto.keys import (
    RSA_MAX_BITS,
    RSA_MIN_BITS,
    KeySizeDecodeError,
    KeySizeError,
    KeyType,
    PrivateKey,
    PublicKey,
    generate_private_key,
    private_key_from_protobuf,
    private_key_from_raw,
    public_key_from_protobuf,
    public_key_from_raw,
)

__all__ = [
    "KeyType",
    "PublicKey",
    "PrivateKey",
    "KeySizeError",
    "KeySizeDecodeError",
    "InsecureKeyFile",
    "RSA_MIN_BITS",
    "RSA_MAX_BITS",
    "generate_private_key",
    "public_key_from_protobuf",
    "private_key_from_protobuf",
    "public_key_from_raw",
    "private_key_from_raw",
    "save_private_key_file",
    "load_private_key_file",
    "load_or_create_private_key_file",
]
