"""Host configuration: one frozen, validated :class:`HostConfig` built from small option functions.

Options are applied in order to a builder, then defaults fill what no option set, then every value
is validated; a bad value raises :class:`~aiolibp2p.core.errors.ConfigError` at construction::

    from aiolibp2p import options as o
    config = build_config(o.listen("/ip4/127.0.0.1/tcp/0"), o.muxers("/yamux/1.0.0"))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

from aiolibp2p._version import __version__
from aiolibp2p.core.crypto import PrivateKey, generate_private_key
from aiolibp2p.core.errors import ConfigError, Libp2pError
from aiolibp2p.core.multiaddr import Multiaddr, parse_multiaddr

__all__ = [
    "HostConfig",
    "Option",
    "build_config",
    "YAMUX",
    "MPLEX",
    "NOISE",
    "TLS",
    "SUPPORTED_MUXERS",
    "SUPPORTED_SECURITY",
    "DEFAULT_AGENT_VERSION",
]

YAMUX = "/yamux/1.0.0"
MPLEX = "/mplex/6.7.0"
NOISE = "/noise"
TLS = "/tls/1.0.0"
SUPPORTED_MUXERS = (YAMUX, MPLEX)
SUPPORTED_SECURITY = (NOISE, TLS)
DEFAULT_AGENT_VERSION = f"aiolibp2p/{__version__}"
#: Protocols allowed in QUIC 0-RTT by default: ping and identify (idempotent, no side effects).
DEFAULT_EARLY_DATA_PROTOCOLS = frozenset({"/ipfs/ping/1.0.0", "/ipfs/id/1.0.0"})


@dataclass(frozen=True, slots=True)
class HostConfig:
    """Everything a host needs, validated.  Build it with :func:`build_config`."""

    identity: PrivateKey
    listen_addrs: tuple[Multiaddr, ...] = ()
    muxers: tuple[str, ...] = SUPPORTED_MUXERS
    security: tuple[str, ...] = SUPPORTED_SECURITY
    agent_version: str = DEFAULT_AGENT_VERSION
    protocol_version: str = "ipfs/0.1.0"
    #: One dial attempt to one address (TCP connect + security + muxer).
    dial_timeout: float = 10.0
    #: A whole ``connect()`` to a peer, over all its addresses.
    connect_timeout: float = 30.0
    #: From TCP connect (or accept) to a ready muxer.
    handshake_timeout: float = 15.0
    #: Per-stream protocol negotiation (inbound streams; outbound ones are bounded by the caller).
    negotiation_timeout: float = 10.0
    #: Delay before dialing the next address of a peer while earlier dials are still pending.
    dial_stagger: float = 0.25
    #: Dial ranking: a peer's TCP (and other non-QUIC) addresses are dialed this long after its
    #: last QUIC address, if it has any (go-libp2p's 250 ms; a failed QUIC dial cuts it short).
    tcp_dial_delay: float = 0.25
    #: Whether to run identify on every new connection and serve identify / ping.
    identify: bool = True
    ping: bool = True
    #: Whether to serve ``/perf/1.0.0``.  Off by default: a client can ask for any number of
    #: bytes (an amplification vector on public nodes, so the spec says SHOULD NOT by default).
    perf: bool = False
    identify_timeout: float = 5.0
    #: Inbound connections still handshaking at once (beyond: refused at accept).
    max_pending_inbound: int = 256
    max_connections: int = 10_000
    #: Inbound streams per connection still negotiating their protocol at once.
    max_negotiating_streams: int = 256
    #: Unread bytes per stream: for mplex (no flow control) reading the socket pauses above it,
    #: so a slow reader stalls the connection instead of losing data; yamux windows bound it.
    max_stream_buffer: int = 16 * 1024 * 1024
    #: Peers kept in the peerstore (disconnected peers beyond are evicted, oldest first).
    max_peerstore_peers: int = 10_000
    #: Bytes the perf server sends back on one stream at most (a larger request is refused with a
    #: reset).  Default: any u64, since serving perf is opt-in.
    max_perf_bytes: int = (1 << 64) - 1
    #: Close connections in the background on protocol errors after this long at most.
    close_timeout: float = 2.0
    #: QUIC (``/quic-v1``): receive windows per stream and per connection (go-libp2p's sizes),
    #: inbound streams open at once per connection, idle timeout, keep-alive PING period when
    #: idle (at most half the idle timeout is used), and the UDP payload size of datagrams sent.
    quic_stream_window: int = 10 << 20
    quic_connection_window: int = 15 << 20
    quic_max_streams: int = 256
    quic_idle_timeout: float = 30.0
    quic_keep_alive: float = 15.0
    quic_max_datagram_size: int = 1350
    #: QUIC 0-RTT: on a connection resumed with a session ticket, streams whose protocols are
    #: all in ``early_data_protocols`` travel in the client's first flight; a server runs their
    #: handlers before the handshake completes.  Other streams wait for the handshake (client)
    #: or their handlers do (server).  Tickets are single use, so a replayed first flight gets
    #: no early data.  Only idempotent protocols belong here (RFC 8446 section 8, RFC 9001
    #: section 9.2): a replay must do no harm.
    quic_early_data: bool = True
    early_data_protocols: frozenset[str] = DEFAULT_EARLY_DATA_PROTOCOLS

    def __post_init__(self) -> None:
        if not isinstance(self.identity, PrivateKey):
            raise ConfigError("identity must be a PrivateKey")
        if not self.muxers:
            raise ConfigError("at least one muxer is required")
        for muxer in self.muxers:
            if muxer not in SUPPORTED_MUXERS:
                raise ConfigError(f"unsupported muxer {muxer!r} (supported: {SUPPORTED_MUXERS})")
        if len(set(self.muxers)) != len(self.muxers):
            raise ConfigError("muxers listed twice")
        if not self.security:
            raise ConfigError("at least one security protocol is required")
        for sec in self.security:
            if sec not in SUPPORTED_SECURITY:
                raise ConfigError(f"unsupported security {sec!r} (supported: {SUPPORTED_SECURITY})")
        if len(set(self.security)) != len(self.security):
            raise ConfigError("security protocols listed twice")
        for name in (
            "dial_timeout",
            "connect_timeout",
            "handshake_timeout",
            "negotiation_timeout",
            "identify_timeout",
            "close_timeout",
        ):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 < value <= 3600:
                raise ConfigError(f"{name} must be a number of seconds in (0, 3600], got {value!r}")
        if not isinstance(self.dial_stagger, (int, float)) or not 0 <= self.dial_stagger <= 60:
            raise ConfigError(f"dial_stagger must be in [0, 60] seconds, got {self.dial_stagger!r}")
        delay = self.tcp_dial_delay
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not 0 <= delay <= 60:
            raise ConfigError(f"tcp_dial_delay must be in [0, 60] seconds, got {delay!r}")
        for name in (
            "max_pending_inbound",
            "max_connections",
            "max_negotiating_streams",
            "max_stream_buffer",
            "max_peerstore_peers",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive int, got {value!r}")
        for name, low, high in (
            ("quic_stream_window", 64 << 10, 1 << 30),
            ("quic_connection_window", 64 << 10, 1 << 31),
            ("quic_max_streams", 1, 1 << 16),
            ("quic_max_datagram_size", 1200, 65527),
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise ConfigError(f"{name} must be an int in [{low}, {high}], got {value!r}")
        if not isinstance(self.quic_early_data, bool):
            raise ConfigError(f"quic_early_data must be a bool, got {self.quic_early_data!r}")
        if not isinstance(self.early_data_protocols, frozenset) or not all(
            isinstance(p, str) and p for p in self.early_data_protocols
        ):
            raise ConfigError("early_data_protocols must be a frozenset of protocol ids")
        for name in ("quic_idle_timeout", "quic_keep_alive"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 < value <= 3600:
                raise ConfigError(f"{name} must be a number of seconds in (0, 3600], got {value!r}")
        value = self.max_perf_bytes
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 64:
            raise ConfigError(f"max_perf_bytes must be an int in [0, 2**64 - 1], got {value!r}")
        if not self.agent_version or len(self.agent_version) > 256:
            raise ConfigError("agent_version must be 1..256 characters")


Option = Callable[[dict[str, Any]], None]
_FIELDS = frozenset(f.name for f in fields(HostConfig))


def _set(name: str, value: Any) -> Option:
    assert name in _FIELDS, name

    def apply(builder: dict[str, Any]) -> None:
        builder[name] = value

    return apply


def build_config(*options: Option, base: HostConfig | None = None) -> HostConfig:
    """Apply ``options`` in order (on top of ``base`` if given), then defaults, then validate."""
    builder: dict[str, Any] = {}
    for option in options:
        if not callable(option):
            raise ConfigError(f"not an option: {option!r}")
        option(builder)
    if base is not None:
        return replace(base, **builder)
    if "identity" not in builder:
        builder["identity"] = generate_private_key()
    try:
        return HostConfig(**builder)
    except TypeError as exc:  # pragma: no cover - options only set known fields
        raise ConfigError(str(exc)) from exc


# ----------------------------------------------------------------------------- option functions


def identity(key: PrivateKey) -> Option:
    """Use ``key`` as the node identity (default: a fresh Ed25519 key)."""
    return _set("identity", key)


def listen(*addrs: str | Multiaddr) -> Option:
    """Listen on these multiaddrs (repeatable; adds to earlier ``listen`` options)."""
    try:
        parsed = tuple(parse_multiaddr(a) for a in addrs)
    except Libp2pError as exc:
        raise ConfigError(f"bad listen address: {exc}") from exc

    def apply(builder: dict[str, Any]) -> None:
        builder["listen_addrs"] = builder.get("listen_addrs", ()) + parsed

    return apply


def muxers(*protocol_ids: str) -> Option:
    """Stream muxers in preference order (default: yamux, then mplex)."""
    return _set("muxers", tuple(protocol_ids))


def security(*protocol_ids: str) -> Option:
    """Security protocols in preference order (default: noise, then TLS).

    A listener accepts every protocol listed; a dialer proposes only the first, lazily (its
    handshake rides with the proposal, saving a round trip).  ``security(TLS)`` dials with TLS.
    """
    return _set("security", tuple(protocol_ids))


def agent_version(value: str) -> Option:
    """The agent version announced by identify."""
    return _set("agent_version", value)


def timeouts(
    *,
    dial: float | None = None,
    connect: float | None = None,
    handshake: float | None = None,
    negotiation: float | None = None,
    identify: float | None = None,
) -> Option:
    """Override timeouts (seconds)."""
    values = {
        "dial_timeout": dial,
        "connect_timeout": connect,
        "handshake_timeout": handshake,
        "negotiation_timeout": negotiation,
        "identify_timeout": identify,
    }

    def apply(builder: dict[str, Any]) -> None:
        builder.update({k: v for k, v in values.items() if v is not None})

    return apply


def dial_stagger(seconds: float) -> Option:
    """Delay before dialing a peer's next address while earlier dials are pending."""
    return _set("dial_stagger", seconds)


def tcp_dial_delay(seconds: float) -> Option:
    """How long a peer's TCP addresses wait behind its QUIC addresses (dial ranking)."""
    return _set("tcp_dial_delay", seconds)


def services(*, identify: bool = True, ping: bool = True, perf: bool = False) -> Option:
    """Turn the built-in identify, ping and perf services on or off (perf is off by default)."""

    def apply(builder: dict[str, Any]) -> None:
        builder["identify"] = identify
        builder["ping"] = ping
        builder["perf"] = perf

    return apply


def quic(
    *,
    stream_window: int | None = None,
    connection_window: int | None = None,
    max_streams: int | None = None,
    idle_timeout: float | None = None,
    keep_alive: float | None = None,
    max_datagram_size: int | None = None,
    early_data: bool | None = None,
) -> Option:
    """Override QUIC settings (windows in bytes, timeouts in seconds; ``early_data=False``
    turns 0-RTT off: resumed connections then wait for the handshake like new ones)."""
    values = {
        "quic_early_data": early_data,
        "quic_stream_window": stream_window,
        "quic_connection_window": connection_window,
        "quic_max_streams": max_streams,
        "quic_idle_timeout": idle_timeout,
        "quic_keep_alive": keep_alive,
        "quic_max_datagram_size": max_datagram_size,
    }

    def apply(builder: dict[str, Any]) -> None:
        builder.update({k: v for k, v in values.items() if v is not None})

    return apply


def early_data_protocols(*protocol_ids: str) -> Option:
    """Add protocols whose streams may travel in QUIC 0-RTT data (besides ping and identify).

    List only idempotent protocols: 0-RTT data can be replayed by an attacker who recorded it
    (tickets are single use here, but the application is the one that knows what is safe).
    A server also marks a protocol with ``host.set_stream_handler(..., idempotent=True)``.
    """
    for pid in protocol_ids:
        if not isinstance(pid, str) or not pid:
            raise ConfigError(f"invalid protocol id {pid!r}")

    def apply(builder: dict[str, Any]) -> None:
        current = builder.get("early_data_protocols", DEFAULT_EARLY_DATA_PROTOCOLS)
        builder["early_data_protocols"] = frozenset(current) | frozenset(protocol_ids)

    return apply


def limits(
    *,
    max_connections: int | None = None,
    max_pending_inbound: int | None = None,
    max_negotiating_streams: int | None = None,
    max_stream_buffer: int | None = None,
    max_peerstore_peers: int | None = None,
    max_perf_bytes: int | None = None,
) -> Option:
    """Override resource bounds."""
    values = {
        "max_connections": max_connections,
        "max_pending_inbound": max_pending_inbound,
        "max_negotiating_streams": max_negotiating_streams,
        "max_stream_buffer": max_stream_buffer,
        "max_peerstore_peers": max_peerstore_peers,
        "max_perf_bytes": max_perf_bytes,
    }

    def apply(builder: dict[str, Any]) -> None:
        builder.update({k: v for k, v in values.items() if v is not None})

    return apply
