"""One static Noise key per host (:class:`NoiseStaticKey`) and the verified-payload cache
(:class:`VerifiedKeys`): two machines in memory.

The spec (libp2p/specs ``noise/README.md``, "Static Key Authentication") lets a peer keep one or
more static Noise keys for its lifetime; ephemeral keys stay fresh per handshake.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from aiolibp2p.core.crypto import KeyType, generate_private_key
from aiolibp2p.core.errors import InvalidSignature, LocalProtocolError, PeerIdMismatch
from aiolibp2p.core.peer import PeerId
from aiolibp2p.proto.noise import (
    STATIC_KEY_SIGNATURE_PREFIX,
    HandshakeComplete,
    HandshakeResult,
    NoiseHandshake,
    NoiseStaticKey,
    VerifiedKeys,
)
from aiolibp2p.proto.noise.core import StaticKeyPair, XXHandshakeState, x25519_public_key
from aiolibp2p.proto.noise.pb import payload_pb2

YAMUX = "/yamux/1.0.0"
_rng = random.Random(20261122)


def key32() -> bytes:
    return _rng.randbytes(32)


def run(initiator: NoiseHandshake, responder: NoiseHandshake) -> tuple[HandshakeResult, ...]:
    assert responder.receive_data(initiator.data_to_send()) == []
    done_i = initiator.receive_data(responder.data_to_send())
    done_r = responder.receive_data(initiator.data_to_send())
    assert [type(e) for e in done_i + done_r] == [HandshakeComplete, HandshakeComplete]
    return done_i[0].result, done_r[0].result


def handshake(
    identity_i: Any, static_i: Any, identity_r: Any, static_r: Any, **kw: Any
) -> tuple[NoiseHandshake, NoiseHandshake]:
    i = NoiseHandshake(
        initiator=True,
        identity_key=identity_i,
        static_key=static_i,
        ephemeral_key=key32(),
        muxers=[YAMUX],
        verified_keys=kw.get("verified_i"),
    )
    r = NoiseHandshake(
        initiator=False,
        identity_key=identity_r,
        static_key=static_r,
        ephemeral_key=key32(),
        muxers=[YAMUX],
        verified_keys=kw.get("verified_r"),
    )
    return i, r


def roundtrip(a: HandshakeResult, b: HandshakeResult) -> None:
    for sender, receiver in ((a, b), (b, a)):
        assert receiver.transport.decrypt(sender.transport.encrypt(b"hello")) == b"hello"


def test_static_key_pair_matches_the_raw_key() -> None:
    raw = key32()
    pair = StaticKeyPair(raw)
    assert pair.public == x25519_public_key(raw)
    # A handshake state built from the pair is the same as one built from the bytes.
    a = XXHandshakeState(initiator=True, static_key=pair, ephemeral_key=b"\x01" * 32)
    b = XXHandshakeState(initiator=True, static_key=raw, ephemeral_key=b"\x01" * 32)
    assert a.static_public_key == b.static_public_key
    assert a.write_message(b"p") == b.write_message(b"p")


def test_static_key_signature_and_payload() -> None:
    identity = generate_private_key()
    static = NoiseStaticKey(identity, key32())
    assert identity.public_key().verify(
        STATIC_KEY_SIGNATURE_PREFIX + static.public_key, static.signature
    )
    payload = static.payload((YAMUX,))
    assert static.payload((YAMUX,)) is payload  # encoded once
    msg: Any = payload_pb2.NoiseHandshakePayload.FromString(payload)
    assert msg.identity_sig == static.signature
    assert list(msg.extensions.stream_muxers) == [YAMUX]
    assert not payload_pb2.NoiseHandshakePayload.FromString(static.payload(())).HasField(
        "extensions"
    )


@pytest.mark.parametrize("key_type", [KeyType.Ed25519, KeyType.Secp256k1, KeyType.ECDSA])
def test_one_static_key_serves_many_handshakes(key_type: KeyType) -> None:
    id_i, id_r = generate_private_key(key_type), generate_private_key()
    static_i, static_r = NoiseStaticKey(id_i, key32()), NoiseStaticKey(id_r, key32())
    for _ in range(3):
        i, r = handshake(id_i, static_i, id_r, static_r)
        res_i, res_r = run(i, r)
        assert res_i.remote_peer == PeerId.from_public_key(id_r.public_key())
        assert res_r.remote_peer == PeerId.from_public_key(id_i.public_key())
        assert res_i.muxer == res_r.muxer == YAMUX
        roundtrip(res_i, res_r)


def test_ephemeral_keys_stay_fresh_with_a_shared_static_key() -> None:
    identity = generate_private_key()
    static = NoiseStaticKey(identity, key32())
    firsts = set()
    for _ in range(5):
        machine = NoiseHandshake(
            initiator=True, identity_key=identity, static_key=static, ephemeral_key=key32()
        )
        firsts.add(machine.data_to_send())  # message 1 is the ephemeral public key
    assert len(firsts) == 5


def test_a_shared_static_key_and_a_per_handshake_key_interoperate() -> None:
    id_i, id_r = generate_private_key(), generate_private_key()
    i, r = handshake(id_i, NoiseStaticKey(id_i, key32()), id_r, key32())
    roundtrip(*run(i, r))
    i, r = handshake(id_i, key32(), id_r, NoiseStaticKey(id_r, key32()))
    roundtrip(*run(i, r))


def test_static_key_of_another_identity_is_refused() -> None:
    static = NoiseStaticKey(generate_private_key(), key32())
    with pytest.raises(LocalProtocolError, match="another identity"):
        NoiseHandshake(
            initiator=True,
            identity_key=generate_private_key(),
            static_key=static,
            ephemeral_key=key32(),
        )


def test_bad_arguments() -> None:
    with pytest.raises(LocalProtocolError):
        NoiseStaticKey("not a key", key32())  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        NoiseStaticKey(generate_private_key(), b"short")
    with pytest.raises(LocalProtocolError):
        VerifiedKeys(-1)
    with pytest.raises(LocalProtocolError):
        NoiseHandshake(
            initiator=True,
            identity_key=generate_private_key(),
            static_key=key32(),
            ephemeral_key=key32(),
            verified_keys={},  # type: ignore[arg-type]
        )


def test_verified_keys_skip_nothing_but_the_same_bytes() -> None:
    id_i, id_r = generate_private_key(), generate_private_key()
    static_i, static_r = NoiseStaticKey(id_i, key32()), NoiseStaticKey(id_r, key32())
    cache_i, cache_r = VerifiedKeys(), VerifiedKeys()
    first = run(*handshake(id_i, static_i, id_r, static_r, verified_i=cache_i, verified_r=cache_r))
    assert len(cache_i) == len(cache_r) == 1
    second = run(*handshake(id_i, static_i, id_r, static_r, verified_i=cache_i, verified_r=cache_r))
    assert len(cache_i) == len(cache_r) == 1  # hits: nothing new
    # The cached key object is handed out again, and the peer is the same.
    assert second[0].remote_public_key is first[0].remote_public_key
    assert second[0].remote_peer == first[0].remote_peer
    roundtrip(*second)
    # A new static key of the same peer is verified (and cached) as usual.
    run(*handshake(id_i, static_i, id_r, NoiseStaticKey(id_r, key32()), verified_i=cache_i))
    assert len(cache_i) == 2


class ForgedPayload(NoiseHandshake):
    """Sends the payload of ``victim`` (its key and signature) with our own static key."""

    victim: NoiseStaticKey

    def _make_payload(self, identity_key: Any, static_public_key: bytes) -> bytes:
        return self.victim.payload((YAMUX,))


def test_a_cached_identity_with_another_static_key_still_fails() -> None:
    victim_id = generate_private_key()
    victim = NoiseStaticKey(victim_id, key32())
    id_r = generate_private_key()
    static_r = NoiseStaticKey(id_r, key32())
    cache = VerifiedKeys()
    run(*handshake(victim_id, victim, id_r, static_r, verified_r=cache))  # caches the victim
    assert len(cache) == 1
    # An attacker replays the victim's key and signature over its own static key.
    forger = type("Forger", (ForgedPayload,), {"victim": victim})(
        initiator=True,
        identity_key=generate_private_key(),
        static_key=key32(),
        ephemeral_key=key32(),
        muxers=[YAMUX],
    )
    responder = NoiseHandshake(
        initiator=False,
        identity_key=id_r,
        static_key=static_r,
        ephemeral_key=key32(),
        muxers=[YAMUX],
        verified_keys=cache,
    )
    responder.receive_data(forger.data_to_send())
    forger.receive_data(responder.data_to_send())
    with pytest.raises(InvalidSignature):
        responder.receive_data(forger.data_to_send())
    assert len(cache) == 1


def test_a_cache_hit_still_checks_the_expected_peer() -> None:
    id_i, id_r = generate_private_key(), generate_private_key()
    static_i, static_r = NoiseStaticKey(id_i, key32()), NoiseStaticKey(id_r, key32())
    cache = VerifiedKeys()
    run(*handshake(id_i, static_i, id_r, static_r, verified_i=cache))
    other = PeerId.from_public_key(generate_private_key().public_key())
    i = NoiseHandshake(
        initiator=True,
        identity_key=id_i,
        static_key=static_i,
        ephemeral_key=key32(),
        expected_peer=other,
        verified_keys=cache,
    )
    r = NoiseHandshake(
        initiator=False, identity_key=id_r, static_key=static_r, ephemeral_key=key32()
    )
    r.receive_data(i.data_to_send())
    with pytest.raises(PeerIdMismatch):
        i.receive_data(r.data_to_send())


def test_verified_keys_is_a_bounded_lru() -> None:
    cache = VerifiedKeys(max_entries=2)
    value: Any = (None, None)
    cache.put((b"a", b"", b""), value)
    cache.put((b"b", b"", b""), value)
    assert cache.get((b"a", b"", b"")) is value  # "a" is now the most recent
    cache.put((b"c", b"", b""), value)
    assert len(cache) == 2
    assert cache.get((b"b", b"", b"")) is None
    assert cache.get((b"a", b"", b"")) is value
    off = VerifiedKeys(max_entries=0)
    off.put((b"a", b"", b""), value)
    assert len(off) == 0
