"""``Upgrader.receive_eof``: end of stream before the upgrade finished is a typed remote error."""

from __future__ import annotations

import os

import pytest

from aiolibp2p.config import YAMUX
from aiolibp2p.core.crypto import generate_private_key
from aiolibp2p.core.errors import (
    HandshakeError,
    LocalProtocolError,
    NegotiationError,
    RemoteProtocolError,
)
from aiolibp2p.proto.upgrade import Upgrader, UpgradeState


def make(initiator: bool) -> Upgrader:
    return Upgrader(
        initiator=initiator,
        identity_key=generate_private_key(),
        muxers=[YAMUX],
        static_key=os.urandom(32),
        ephemeral_key=os.urandom(32),
    )


def test_eof_before_anything_arrived() -> None:
    listener = make(False)
    with pytest.raises(NegotiationError, match="ended"):
        listener.receive_eof()
    assert listener.state is UpgradeState.ERROR
    with pytest.raises(LocalProtocolError):
        listener.receive_eof()
    with pytest.raises(LocalProtocolError):
        listener.receive_data(b"x")


def test_eof_during_the_noise_handshake_both_roles() -> None:
    dialer, listener = make(True), make(False)
    first = dialer.data_to_send()
    assert listener.receive_data(first) is None  # /noise agreed, message 1 in: message 2 queued
    assert listener.state is UpgradeState.HANDSHAKE
    reply = listener.data_to_send()  # header, "/noise" echo, message 2
    with pytest.raises(HandshakeError, match="noise handshake"):
        listener.receive_eof()
    # the dialer with the listener's multistream echo and half of message 2
    assert dialer.receive_data(reply[: len(reply) // 2]) is None
    assert dialer.state is UpgradeState.HANDSHAKE
    with pytest.raises(HandshakeError, match="noise handshake"):
        dialer.receive_eof()
    assert dialer.state is UpgradeState.ERROR


def test_dialer_eof_before_any_reply_is_a_negotiation_error() -> None:
    dialer = make(True)
    dialer.data_to_send()  # multistream proposal and Noise message 1 went out
    with pytest.raises(NegotiationError, match="security-negotiation"):
        dialer.receive_eof()


def test_eof_errors_are_remote_and_done_is_local() -> None:
    dialer, listener = make(True), make(False)
    done = None
    to_listener = dialer.data_to_send()
    for _ in range(4):  # pump both ways until both are done
        if to_listener:
            done = listener.receive_data(to_listener) or done
        to_dialer = listener.data_to_send()
        if to_dialer:
            dialer.receive_data(to_dialer)
        to_listener = dialer.data_to_send()
    assert dialer.state is UpgradeState.DONE and listener.state is UpgradeState.DONE
    assert done is not None
    for machine in (dialer, listener):
        with pytest.raises(LocalProtocolError):
            machine.receive_eof()
    assert issubclass(HandshakeError, RemoteProtocolError)
    assert issubclass(NegotiationError, RemoteProtocolError)
