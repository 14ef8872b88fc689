"""Option functions for :func:`aiolibp2p.new_host` / :func:`aiolibp2p.config.build_config`."""

from aiolibp2p.config import (
    agent_version,
    dial_stagger,
    early_data_protocols,
    identity,
    limits,
    listen,
    muxers,
    quic,
    security,
    services,
    tcp_dial_delay,
    timeouts,
)

__all__ = [
    "agent_version",
    "dial_stagger",
    "early_data_protocols",
    "identity",
    "limits",
    "listen",
    "muxers",
    "quic",
    "security",
    "services",
    "tcp_dial_delay",
    "timeouts",
]
