"""The noise-libp2p handshake machine (``aiolibp2p.proto.noise``), two machines in memory.

Spec: libp2p/specs ``noise/README.md`` (r4) and ``connections/inlined-muxer-negotiation.md``.
The Noise core is checked against the ``Noise_XX_25519_ChaChaPoly_SHA256`` vector of the
cacophony test vectors (``haskell-cryptography/cacophony`` ``vectors/cacophony.txt``, commit
8ee9d41, public domain), handshake and transport messages.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiolibp2p._accel import noise_cipher
from aiolibp2p.core.crypto import KeyType, PrivateKey, generate_private_key
from aiolibp2p.core.errors import (
    DecryptError,
    HandshakeError,
    InvalidSignature,
    KeyDecodeError,
    Libp2pError,
    LocalProtocolError,
    MessageTooLarge,
    NegotiationError,
    NonceExhausted,
    PeerIdMismatch,
    RemoteProtocolError,
)
from aiolibp2p.core.peer import PeerId
from aiolibp2p.proto.noise import (
    MAX_MESSAGE_SIZE,
    PROTOCOL_ID,
    HandshakeComplete,
    HandshakeResult,
    NoiseHandshake,
    State,
)
from aiolibp2p.proto.noise.core import XXHandshakeState, x25519_public_key
from aiolibp2p.proto.noise.pb import payload_pb2

YAMUX, MPLEX = "/yamux/1.0.0", "/mplex/6.7.0"
_rng = random.Random(20240607)


def key32() -> bytes:
    return _rng.randbytes(32)


@pytest.fixture(scope="module")
def keys() -> dict[KeyType, PrivateKey]:
    """One identity key per type (RSA is generated once: it is slow)."""
    return {kt: generate_private_key(kt) for kt in KeyType}


def make(
    initiator: bool,
    identity: PrivateKey | None = None,
    cls: type[NoiseHandshake] = NoiseHandshake,
    **kwargs: Any,
) -> NoiseHandshake:
    return cls(
        initiator=initiator,
        identity_key=identity or generate_private_key(),
        static_key=kwargs.pop("static_key", key32()),
        ephemeral_key=kwargs.pop("ephemeral_key", key32()),
        **kwargs,
    )


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    for pos in range(0, len(data), size):
        yield data[pos : pos + size]


def feed(machine: NoiseHandshake, data: bytes, size: int | None = None) -> list[Any]:
    events: list[Any] = []
    for chunk in chunks(data, size or max(1, len(data))):
        events += machine.receive_data(chunk)
    return events


def run(
    initiator: NoiseHandshake, responder: NoiseHandshake, size: int | None = None
) -> tuple[HandshakeResult, HandshakeResult]:
    """Drive both machines to completion, delivering every write in ``size``-byte chunks."""
    assert feed(responder, initiator.data_to_send(), size) == []
    done_i = feed(initiator, responder.data_to_send(), size)
    assert [type(e) for e in done_i] == [HandshakeComplete]
    done_r = feed(responder, initiator.data_to_send(), size)
    assert [type(e) for e in done_r] == [HandshakeComplete]
    assert initiator.complete and responder.complete
    assert initiator.data_to_send() == responder.data_to_send() == b""
    return done_i[0].result, done_r[0].result


def frames(stream: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(stream):
        length = int.from_bytes(stream[pos : pos + 2], "big")
        out.append(stream[pos + 2 : pos + 2 + length])
        pos += 2 + length
    return out


def reframe(body: bytes) -> bytes:
    return len(body).to_bytes(2, "big") + body


def peer(key: PrivateKey) -> PeerId:
    return PeerId.from_public_key(key.public_key())


def check_transports(a: HandshakeResult, b: HandshakeResult) -> None:
    for sender, receiver in ((a, b), (b, a)):
        for data in (b"x", b"", bytes(range(256)) * 300):
            assert receiver.transport.decrypt(sender.transport.encrypt(data)) == data


# --- the happy path -----------------------------------------------------------------------------


def test_protocol_constants() -> None:
    assert PROTOCOL_ID == "/noise"
    assert MAX_MESSAGE_SIZE == 65535


def test_message_one_is_queued_at_construction() -> None:
    ephemeral = key32()
    initiator = make(True, ephemeral_key=ephemeral)
    assert initiator.state is State.AWAIT_MESSAGE_2
    assert initiator.data_to_send() == b"\x00\x20" + x25519_public_key(ephemeral)
    assert initiator.data_to_send() == b""  # drained
    responder = make(False)
    assert responder.state is State.AWAIT_MESSAGE_1
    assert responder.data_to_send() == b""


@pytest.mark.parametrize("size", [1, 2, 3, 31, 32, 33, 34, 35, 96, 97, 1000, None])
def test_handshake_with_every_chunking(size: int | None) -> None:
    ki, kr = generate_private_key(), generate_private_key()
    initiator = make(True, ki, expected_peer=peer(kr))
    responder = make(False, kr)
    ri, rr = run(initiator, responder, size)
    assert ri.remote_peer == peer(kr) and rr.remote_peer == peer(ki)
    assert ri.remote_public_key == kr.public_key() and rr.remote_public_key == ki.public_key()
    assert (ri.muxer, rr.muxer, ri.remote_muxers, rr.remote_muxers) == (None, None, (), ())
    assert ri.leftover == rr.leftover == b""
    assert initiator.result is ri and responder.result is rr
    check_transports(ri, rr)


@given(st.data())
def test_handshake_with_random_split_points(data: st.DataObject) -> None:
    initiator, responder = make(True), make(False)

    def deliver(source: NoiseHandshake, target: NoiseHandshake) -> list[Any]:
        wire = source.data_to_send()
        cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=6)))
        events: list[Any] = []
        for lo, hi in zip([0, *cuts], [*cuts, len(wire)], strict=True):
            if not target.complete:  # empty chunks are fed too, until completion
                events += target.receive_data(wire[lo:hi])
            else:
                assert lo == hi
        return events

    assert deliver(initiator, responder) == []
    assert len(deliver(responder, initiator)) == 1
    assert len(deliver(initiator, responder)) == 1
    check_transports(initiator.result, responder.result)


def test_message_sizes() -> None:
    initiator, responder = make(True), make(False)
    msg1 = initiator.data_to_send()
    responder.receive_data(msg1)
    msg2 = responder.data_to_send()
    initiator.receive_data(msg2)
    msg3 = initiator.data_to_send()
    assert len(frames(msg1)[0]) == 32  # e, no payload
    payload = 2 + 36 + 2 + 64  # identity_key (Ed25519 PublicKey message) + identity_sig
    assert len(frames(msg2)[0]) == 32 + 48 + payload + 16
    assert len(frames(msg3)[0]) == 48 + payload + 16


@pytest.mark.parametrize("initiator_type", list(KeyType))
@pytest.mark.parametrize("responder_type", [KeyType.Ed25519, KeyType.Secp256k1, KeyType.ECDSA])
def test_every_identity_key_type(
    keys: dict[KeyType, PrivateKey], initiator_type: KeyType, responder_type: KeyType
) -> None:
    ki, kr = keys[initiator_type], keys[responder_type]
    ri, rr = run(make(True, ki, expected_peer=peer(kr)), make(False, kr, expected_peer=peer(ki)))
    assert ri.remote_public_key.key_type is responder_type
    assert rr.remote_public_key.key_type is initiator_type
    assert rr.remote_peer == peer(ki)
    check_transports(ri, rr)


def test_rsa_responder(keys: dict[KeyType, PrivateKey]) -> None:
    ri, _ = run(make(True), make(False, keys[KeyType.RSA]))
    assert ri.remote_peer == peer(keys[KeyType.RSA])


def test_prologue_must_match() -> None:
    ri, rr = run(make(True, prologue=b"webrtc"), make(False, prologue=b"webrtc"))
    check_transports(ri, rr)
    initiator, responder = make(True, prologue=b"a"), make(False, prologue=b"b")
    responder.receive_data(initiator.data_to_send())
    with pytest.raises(HandshakeError, match="failed authentication"):
        initiator.receive_data(responder.data_to_send())


# --- early muxer negotiation --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ours", "theirs", "expected"),
    [
        ([YAMUX, MPLEX], [MPLEX, YAMUX], YAMUX),  # the spec's example: the initiator's order
        ([MPLEX, YAMUX], [YAMUX, MPLEX], MPLEX),
        ([YAMUX], [MPLEX, YAMUX], YAMUX),
        (["/x/1", MPLEX], [YAMUX, MPLEX], MPLEX),
        ([YAMUX], [], None),  # the responder sent no list: multistream fallback
        ([], [YAMUX], None),  # the initiator sent no list
        ([], [], None),
    ],
)
def test_muxer_negotiation(ours: list[str], theirs: list[str], expected: str | None) -> None:
    ri, rr = run(make(True, muxers=ours), make(False, muxers=theirs))
    assert ri.muxer == rr.muxer == expected
    assert ri.remote_muxers == tuple(theirs)
    assert rr.remote_muxers == tuple(ours)


def test_no_common_muxer_fails_before_message_three() -> None:
    initiator, responder = make(True, muxers=[YAMUX]), make(False, muxers=[MPLEX])
    responder.receive_data(initiator.data_to_send())
    with pytest.raises(NegotiationError, match="no stream muxer in common"):
        initiator.receive_data(responder.data_to_send())
    assert initiator.state is State.ERROR
    assert initiator.data_to_send() == b""  # message 3 is never sent
    with pytest.raises(LocalProtocolError):
        _ = initiator.result
    with pytest.raises(HandshakeError, match="ended during the noise handshake"):
        responder.receive_eof()


def test_no_common_muxer_fails_on_the_responder_too() -> None:
    class Liar(NoiseHandshake):
        def _select_muxer(self, remote_muxers: tuple[str, ...]) -> str | None:
            return None  # an initiator that ignores the overlap rule

    initiator, responder = make(True, cls=Liar, muxers=[YAMUX]), make(False, muxers=[MPLEX])
    responder.receive_data(initiator.data_to_send())
    initiator.receive_data(responder.data_to_send())
    with pytest.raises(NegotiationError):
        responder.receive_data(initiator.data_to_send())


# --- authentication -----------------------------------------------------------------------------


def test_expected_peer_mismatch_on_the_initiator() -> None:
    wrong = peer(generate_private_key())
    initiator, responder = make(True, expected_peer=wrong), make(False)
    responder.receive_data(initiator.data_to_send())
    with pytest.raises(PeerIdMismatch, match=f"expected peer {wrong}"):
        initiator.receive_data(responder.data_to_send())
    assert initiator.data_to_send() == b""


def test_expected_peer_mismatch_on_the_responder() -> None:
    initiator = make(True)
    responder = make(False, expected_peer=peer(generate_private_key()))
    responder.receive_data(initiator.data_to_send())
    initiator.receive_data(responder.data_to_send())
    with pytest.raises(PeerIdMismatch):
        responder.receive_data(initiator.data_to_send())


class CustomPayload(NoiseHandshake):
    """Sends the payload ``make_payload(identity_key, static_public_key)`` builds."""

    make_payload: Callable[[PrivateKey, bytes], bytes]

    def _make_payload(self, identity_key: PrivateKey, static_public_key: bytes) -> bytes:
        return type(self).make_payload(identity_key, static_public_key)


def custom(make_payload: Callable[[PrivateKey, bytes], bytes]) -> type[NoiseHandshake]:
    return type("Custom", (CustomPayload,), {"make_payload": staticmethod(make_payload)})


def payload(
    identity_key: bytes | None = None,
    identity_sig: bytes | None = None,
    muxers: Sequence[str] = (),
    **extra: Any,
) -> bytes:
    message = payload_pb2.NoiseHandshakePayload()
    if identity_key is not None:
        message.identity_key = identity_key
    if identity_sig is not None:
        message.identity_sig = identity_sig
    if muxers:
        message.extensions.stream_muxers.extend(muxers)
    for name, value in extra.items():
        getattr(message.extensions, name).extend(value)
    return message.SerializeToString()


def signed(identity: PrivateKey, static: bytes, **kwargs: Any) -> bytes:
    return payload(
        identity.public_key().to_protobuf(),
        identity.sign(b"noise-libp2p-static-key:" + static),
        **kwargs,
    )


BAD_PAYLOADS: list[tuple[str, Callable[[PrivateKey, bytes], bytes], type[Exception], str]] = [
    (
        "signature of another static key",
        lambda k, s: signed(k, bytes(32)),
        InvalidSignature,
        "does not verify",
    ),
    (
        "signature by another identity key",
        lambda k, s: payload(
            k.public_key().to_protobuf(),
            generate_private_key().sign(b"noise-libp2p-static-key:" + s),
        ),
        InvalidSignature,
        "does not verify",
    ),
    (
        "signature without the prefix",
        lambda k, s: payload(k.public_key().to_protobuf(), k.sign(s)),
        InvalidSignature,
        "does not verify",
    ),
    ("no identity_key", lambda k, s: payload(None, k.sign(s)), HandshakeError, "identity_key"),
    (
        "no identity_sig",
        lambda k, s: payload(k.public_key().to_protobuf(), None),
        HandshakeError,
        "identity_sig",
    ),
    ("empty payload", lambda k, s: b"", HandshakeError, "identity_key"),
    ("not protobuf", lambda k, s: b"\xff\xff\xff", HandshakeError, "malformed"),
    ("bad key bytes", lambda k, s: payload(b"\x08\x01\x12\x01x", b"sig"), KeyDecodeError, "."),
    (
        "invalid UTF-8 muxer",
        # extensions { stream_muxers: b"\xff\xfeA" }
        lambda k, s: signed(k, s) + b"\x22\x05\x12\x03\xff\xfeA",
        HandshakeError,
        "not UTF-8",
    ),
]


@pytest.mark.parametrize(
    ("make_payload", "error", "match"),
    [pytest.param(f, e, m, id=name) for name, f, e, m in BAD_PAYLOADS],
)
@pytest.mark.parametrize("bad_side", ["responder", "initiator"])
def test_bad_payload(
    make_payload: Callable[[PrivateKey, bytes], bytes],
    error: type[Exception],
    match: str,
    bad_side: str,
) -> None:
    cls = custom(make_payload)
    initiator = make(True, cls=cls if bad_side == "initiator" else NoiseHandshake)
    responder = make(False, cls=cls if bad_side == "responder" else NoiseHandshake)
    responder.receive_data(initiator.data_to_send())
    victim: NoiseHandshake = initiator
    if bad_side == "initiator":
        initiator.receive_data(responder.data_to_send())
        victim = responder
        wire = initiator.data_to_send()
    else:
        wire = responder.data_to_send()
    with pytest.raises(error, match=match) as info:
        victim.receive_data(wire)
    assert isinstance(info.value, RemoteProtocolError)
    assert victim.state is State.ERROR and not victim.complete


def test_unknown_payload_and_extension_fields_are_ignored() -> None:
    def extended(k: PrivateKey, s: bytes) -> bytes:
        body = signed(k, s, muxers=[YAMUX], webtransport_certhashes=[b"\x12\x20" + bytes(32)])
        return body + b"\x1a\x03old" + b"\x22\x04\x2a\x02zz" + b"\xa2\x06\x00"  # fields 3, 4.5, 100

    ri, rr = run(make(True, cls=custom(extended), muxers=[YAMUX]), make(False, muxers=[YAMUX]))
    assert ri.muxer == rr.muxer == YAMUX
    assert rr.remote_muxers == (YAMUX,)


# --- malformed handshake messages ---------------------------------------------------------------


def test_every_flipped_byte_of_message_two_fails() -> None:
    kr = generate_private_key()
    wire = None
    for index in range(200):  # message 2 with an Ed25519 payload: 32 + 48 + 104 + 16 bytes
        initiator, responder = make(True), make(False, kr)
        responder.receive_data(initiator.data_to_send())
        wire = bytearray(responder.data_to_send())
        assert len(wire) == 2 + 200
        wire[2 + index] ^= 0x80
        with pytest.raises(HandshakeError):
            initiator.receive_data(wire)
        assert initiator.data_to_send() == b""


def test_every_flipped_byte_of_message_three_fails() -> None:
    for index in range(168):  # 48 + 104 + 16 bytes
        initiator, responder = make(True), make(False)
        responder.receive_data(initiator.data_to_send())
        initiator.receive_data(responder.data_to_send())
        wire = bytearray(initiator.data_to_send())
        assert len(wire) == 2 + 168
        wire[2 + index] ^= 0x01
        with pytest.raises(HandshakeError):
            responder.receive_data(wire)


@pytest.mark.parametrize("delta", [-1, +1, +16])
def test_message_two_of_the_wrong_length_fails(delta: int) -> None:
    initiator, responder = make(True), make(False)
    responder.receive_data(initiator.data_to_send())
    body = frames(responder.data_to_send())[0]
    body = body[:delta] if delta < 0 else body + bytes(delta)
    with pytest.raises(HandshakeError, match="failed authentication"):
        initiator.receive_data(reframe(body))


@pytest.mark.parametrize(
    ("length", "error", "match"),
    [
        (31, HandshakeError, "message 1 must be 32 bytes"),
        (33, HandshakeError, "message 1 must be 32 bytes"),  # a payload in message 1
        (0, HandshakeError, "message 1 must be 32 bytes"),
        (65535, HandshakeError, "message 1 must be 32 bytes"),
    ],
)
def test_message_one_of_the_wrong_length(length: int, error: type[Exception], match: str) -> None:
    responder = make(False)
    with pytest.raises(error, match=match):
        responder.receive_data(length.to_bytes(2, "big"))  # refused on the prefix alone
    assert responder.data_to_send() == b""


@pytest.mark.parametrize(("length", "number"), [(95, 2), (0, 2), (63, 3), (17, 3)])
def test_handshake_message_below_its_minimum(length: int, number: int) -> None:
    initiator, responder = make(True), make(False)
    responder.receive_data(initiator.data_to_send())
    victim = initiator
    if number == 3:
        initiator.receive_data(responder.data_to_send())
        victim = responder
    with pytest.raises(HandshakeError, match=f"message {number} of {length} bytes is shorter"):
        victim.receive_data(length.to_bytes(2, "big") + bytes(length))


def test_oversized_frame_length() -> None:
    initiator = make(True, max_message_size=1000)
    with pytest.raises(MessageTooLarge, match="message of 1001 bytes exceeds the limit of 1000"):
        initiator.receive_data(b"\x03\xe9")  # refused before any body byte arrives
    responder = make(False, max_message_size=1000)
    responder.receive_data(make(True).data_to_send())
    with pytest.raises(MessageTooLarge):
        responder.receive_data(b"\xff\xff")


def test_low_order_ephemeral_key_fails() -> None:
    responder = make(False)
    with pytest.raises(HandshakeError, match="gave no secret"):
        responder.receive_data(b"\x00\x20" + bytes(32))  # the all-zero point


def test_garbage_message_two() -> None:
    initiator = make(True)
    with pytest.raises(HandshakeError):
        initiator.receive_data(reframe(_rng.randbytes(300)))


def test_truncated_handshake() -> None:
    initiator, responder = make(True), make(False)
    responder.receive_data(initiator.data_to_send())
    wire = responder.data_to_send()
    assert initiator.receive_data(wire[:-1]) == []
    with pytest.raises(HandshakeError, match="ended during the noise handshake"):
        initiator.receive_eof()
    with pytest.raises(LocalProtocolError, match="failed"):
        initiator.receive_data(wire[-1:])
    with pytest.raises(LocalProtocolError, match="failed"):
        initiator.receive_eof()


def test_early_data_is_discarded_on_failure() -> None:
    initiator, responder = make(True, muxers=[YAMUX]), make(False, muxers=[YAMUX])
    responder.receive_data(initiator.data_to_send())
    initiator.receive_data(responder.data_to_send())
    wire = bytearray(initiator.data_to_send())
    wire[-1] ^= 1
    with pytest.raises(HandshakeError):
        responder.receive_data(bytes(wire) + b"transport bytes")
    assert responder.state is State.ERROR
    with pytest.raises(LocalProtocolError, match="not complete"):
        _ = responder.result
    assert responder.data_to_send() == b""


@given(st.binary(max_size=400), st.booleans())
def test_random_bytes_raise_only_typed_errors(data: bytes, as_initiator: bool) -> None:
    machine = make(as_initiator)
    try:
        machine.receive_data(data)
    except RemoteProtocolError:
        assert machine.state is State.ERROR
    else:
        assert not machine.complete


@given(st.data())
def test_corrupted_handshakes_raise_only_typed_errors(data: st.DataObject) -> None:
    initiator, responder = make(True, muxers=[YAMUX]), make(False, muxers=[YAMUX])
    pairs = [(initiator, responder), (responder, initiator), (initiator, responder)]
    for source, target in pairs:
        wire = bytearray(source.data_to_send())
        for _ in range(data.draw(st.integers(0, 2))):
            if wire:
                wire[data.draw(st.integers(0, len(wire) - 1))] = data.draw(st.integers(0, 255))
        wire = wire[: data.draw(st.integers(0, len(wire)))] + data.draw(st.binary(max_size=8))
        try:
            target.receive_data(bytes(wire))
        except RemoteProtocolError:
            return
        if target.complete:
            return


# --- after the handshake ------------------------------------------------------------------------


def test_leftover_transport_frames_after_message_three() -> None:
    initiator, responder = make(True), make(False)
    responder.receive_data(initiator.data_to_send())
    (done,) = initiator.receive_data(responder.data_to_send())
    transport = done.result.transport
    early = transport.encrypt(b"/multistream/1.0.0") + transport.encrypt(b"pipelined")
    partial = transport.encrypt(b"third")
    (complete,) = responder.receive_data(initiator.data_to_send() + early + partial[:5])
    result = complete.result
    assert result.leftover == early + partial[:5]
    assert result.transport.decrypt(result.leftover) == b"/multistream/1.0.0pipelined"
    assert result.transport.pending == 5
    assert result.transport.decrypt(partial[5:]) == b"third"
    with pytest.raises(LocalProtocolError, match="complete"):
        responder.receive_data(b"more")
    with pytest.raises(LocalProtocolError, match="complete"):
        responder.receive_eof()


def test_transport_frames_and_nonces() -> None:
    ri, rr = run(make(True), make(False))
    big = bytes(200_000)
    sealed = ri.transport.encrypt(big)
    assert [len(f) for f in frames(sealed)] == [65535, 65535, 65535, 200_000 - 3 * 65519 + 16]
    assert ri.transport.encrypt(b"") == b""
    assert rr.transport.decrypt(sealed) == big
    assert ri.transport.send_nonce == rr.transport.receive_nonce == 4
    many = ri.transport.encrypt_many([b"a", b"", b"bc"])
    assert len(frames(many)) == 2
    assert rr.transport.decrypt(many) == b"abc"
    assert ri.transport.encrypt_many([]) == b""
    assert "NoiseTransport" in repr(ri.transport)


def test_tampered_transport_frame() -> None:
    ri, rr = run(make(True), make(False))
    wire = bytearray(ri.transport.encrypt(b"hello"))
    wire[5] ^= 1
    with pytest.raises(DecryptError, match="failed authentication"):
        rr.transport.decrypt(wire)
    with pytest.raises(DecryptError):
        rr.transport.decrypt(ri.transport.encrypt(b"after"))


def test_nonce_exhaustion_with_a_small_limit() -> None:
    class Limited(NoiseHandshake):
        MAX_NONCE = 3

    ri, rr = run(make(True, cls=Limited), make(False))
    for _ in range(3):
        rr.transport.decrypt(ri.transport.encrypt(b"m"))
    with pytest.raises(NonceExhausted):
        ri.transport.encrypt(b"one too many")
    assert ri.transport.send_nonce == 3
    # The other direction: the responder (default limit) sends a fourth frame.
    for _ in range(3):
        assert ri.transport.decrypt(rr.transport.encrypt(b"r")) == b"r"
    with pytest.raises(DecryptError, match="receive nonce exhausted"):
        ri.transport.decrypt(rr.transport.encrypt(b"r"))


def test_transport_uses_the_selected_twin() -> None:
    ri, _ = run(make(True), make(False))
    assert type(ri.transport._sealer).__module__ == noise_cipher.__name__


# --- API misuse ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"identity_key": b"not a key"}, "identity_key must be a PrivateKey"),
        ({"static_key": b"short"}, "static_key must be a 32-byte X25519 private key"),
        ({"ephemeral_key": "x" * 32}, "ephemeral_key must be bytes"),
        ({"muxers": YAMUX}, "muxers must be a sequence"),
        ({"muxers": [YAMUX, YAMUX]}, "listed twice"),
        ({"muxers": [""]}, "non-empty str"),
        ({"muxers": ["\ud800"]}, "not valid UTF-8"),
        ({"expected_peer": "12D3Koo"}, "expected_peer must be a PeerId"),
        ({"prologue": "text"}, "prologue must be bytes"),
        ({"max_message_size": 65536}, "max_message_size must be an int"),
        ({"max_message_size": 95}, "max_message_size must be an int"),
        ({"max_message_size": True}, "max_message_size must be an int"),
        ({"max_message_size": 150}, "would exceed max_message_size"),
        ({"muxers": [f"/m/{i:04d}" + "x" * 900 for i in range(80)]}, "would exceed"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    base: dict[str, Any] = {
        "initiator": False,
        "identity_key": generate_private_key(),
        "static_key": key32(),
        "ephemeral_key": key32(),
    }
    with pytest.raises(LocalProtocolError, match=match):
        NoiseHandshake(**(base | kwargs))


def test_result_before_completion_and_bad_input() -> None:
    machine = make(True)
    with pytest.raises(LocalProtocolError, match="not complete"):
        _ = machine.result
    with pytest.raises(LocalProtocolError, match="data must be bytes"):
        machine.receive_data("text")  # type: ignore[arg-type]
    assert machine.state is State.AWAIT_MESSAGE_2  # misuse does not fail the handshake
    assert "initiator" in repr(machine)


def test_errors_are_typed() -> None:
    assert issubclass(HandshakeError, RemoteProtocolError)
    assert issubclass(DecryptError, RemoteProtocolError)
    assert issubclass(NonceExhausted, LocalProtocolError)
    assert issubclass(MessageTooLarge, Libp2pError)


# --- the Noise core against the cacophony vector ------------------------------------------------

# haskell-cryptography/cacophony vectors/cacophony.txt, protocol_name
# "Noise_XX_25519_ChaChaPoly_SHA256" (the only entry for it): prologue "John Galt".
VECTOR = {
    "init_prologue": "4a6f686e2047616c74",
    "init_static": "e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1",
    "init_ephemeral": "893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a",
    "resp_prologue": "4a6f686e2047616c74",
    "resp_static": "4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893",
    "resp_ephemeral": "bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b",
    "handshake_hash": "c8e5f64e846193be2a834104c2a009868d6c9f3bd3c186299888b488b2f1f58e",
    "messages": [
        (
            "4c756477696720766f6e204d69736573",
            "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c7944"
            "4c756477696720766f6e204d69736573",
        ),
        (
            "4d757272617920526f746862617264",
            "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f144808843"
            "81cbad1f276e038c48378ffce2b65285e08d6b68aaa3629a5a8639392490e5b9"
            "bd5269c2f1e4f488ed8831161f19b7815528f8982ffe09be9b5c412f8a0db50f"
            "8814c7194e83f23dbd8d162c9326ad",
        ),
        (
            "462e20412e20486179656b",
            "c7195ffacac1307ff99046f219750fc47693e23c3cb08b89c2af808b444850a8"
            "0ae475b9df0f169ae80a89be0865b57f58c9fea0d4ec82a286427402f113e4b6"
            "ae769a1d95941d49b25030",
        ),
        ("4361726c204d656e676572", "96763ed773f8e47bb3712f0e29b3060ffc956ffc146cee53d5e1df"),
        (
            "4a65616e2d426170746973746520536179",
            "3e40f15f6f3a46ae446b253bf8b1d9ffb6ed9b174d272328ff91a7e2e5c79c07f5",
        ),
        (
            "457567656e2042f6686d20766f6e2042617765726b",
            "eb3f3515110702e047a6c9da4478b6ead94873c11c0f2d710ddb3f09fce024b3a58502ae3f",
        ),
    ],
}


def test_noise_core_matches_the_cacophony_vector(impl: Any) -> None:
    h = bytes.fromhex
    v: dict[str, Any] = VECTOR
    initiator = XXHandshakeState(
        initiator=True,
        static_key=h(v["init_static"]),
        ephemeral_key=h(v["init_ephemeral"]),
        prologue=h(v["init_prologue"]),
    )
    responder = XXHandshakeState(
        initiator=False,
        static_key=h(v["resp_static"]),
        ephemeral_key=h(v["resp_ephemeral"]),
        prologue=h(v["resp_prologue"]),
    )
    messages = [(h(p), h(c)) for p, c in v["messages"]]
    for index, (plaintext, ciphertext) in enumerate(messages[:3]):
        writer, reader = (initiator, responder) if index % 2 == 0 else (responder, initiator)
        assert writer.write_message(plaintext) == ciphertext
        assert reader.read_message(ciphertext) == plaintext
    assert initiator.finished and responder.finished
    assert initiator.handshake_hash == responder.handshake_hash == h(v["handshake_hash"])
    assert initiator.remote_static_key == x25519_public_key(h(v["resp_static"]))
    # Transport messages keep alternating, starting with the responder; the twins add framing.
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    nc = impl.noise_cipher
    (i_send, i_recv), (r_send, r_recv) = initiator.split(), responder.split()
    assert (i_send, i_recv) == (r_recv, r_send)
    sealers = [nc.FrameSealer(ChaCha20Poly1305(k)) for k in (i_send, r_send)]
    openers = [nc.FrameOpener(ChaCha20Poly1305(k)) for k in (r_recv, i_recv)]
    for index, (plaintext, ciphertext) in enumerate(messages[3:], start=3):
        writer = index % 2  # 0: the initiator writes, 1: the responder
        sealed = sealers[writer].seal(plaintext)
        assert sealed == reframe(ciphertext)
        assert openers[writer].open(sealed) == plaintext
