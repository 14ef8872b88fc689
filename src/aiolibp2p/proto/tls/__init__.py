"""libp2p TLS (``/tls/1.0.0``; libp2p/specs ``tls/tls.md``).

:mod:`.certificate` builds and verifies the self-signed certificate carrying the libp2p Public
Key Extension and holds the ALPN helpers for early muxer negotiation.  :mod:`.machine` runs the
TLS 1.3 handshake and record layer as a sans-IO machine (:class:`TlsConfig`,
:class:`TlsHandshake`, :class:`TlsTransport`); its names are importable from here but load
pyOpenSSL only on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .certificate import (
    ALPN,
    CERTIFICATE_LIFETIME,
    EXTENSION_OID,
    SIGNATURE_PREFIX,
    alpn_protocols,
    build_certificate,
    muxer_from_alpn,
    select_alpn,
    verify_certificate,
)

if TYPE_CHECKING:
    from .machine import (
        HandshakeComplete,
        HandshakeResult,
        State,
        TlsConfig,
        TlsHandshake,
        TlsTransport,
    )

#: The multistream-select protocol id of libp2p TLS.
PROTOCOL_ID = "/tls/1.0.0"

_LAZY = frozenset(
    {"HandshakeComplete", "HandshakeResult", "State", "TlsConfig", "TlsHandshake", "TlsTransport"}
)

__all__ = [
    "ALPN",
    "CERTIFICATE_LIFETIME",
    "EXTENSION_OID",
    "PROTOCOL_ID",
    "SIGNATURE_PREFIX",
    "HandshakeComplete",
    "HandshakeResult",
    "State",
    "TlsConfig",
    "TlsHandshake",
    "TlsTransport",
    "alpn_protocols",
    "build_certificate",
    "muxer_from_alpn",
    "select_alpn",
    "verify_certificate",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import machine

        return getattr(machine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
