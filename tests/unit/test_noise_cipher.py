"""Noise transport frames (``noise_cipher`` twins): each test runs against both twins (``impl``),
and differential tests compare the twins on random, truncated and tampered input.

The frame format is libp2p/specs ``noise/README.md`` "Wire Format" (2-byte big-endian length,
Noise messages of at most 65535 bytes); the nonce encoding is the Noise spec rev 34, section
12.3 (ChaChaPoly: 32 zero bits then the 64-bit little-endian counter).  The reference ciphertexts
below are computed independently with ``cryptography``'s ``ChaCha20Poly1305.encrypt``; the
AEAD itself is checked against RFC 8439 section 2.8.2.

Sealers and openers are built from a 32-byte key (the compiled twin then runs libcrypto's EVP
ChaCha20-Poly1305 directly) or from a ``ChaCha20Poly1305`` object (the older form): the ``k``
fixture runs each test with both forms.
"""

from __future__ import annotations

import array
import inspect
import itertools
import json
import os
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from hypothesis import given
from hypothesis import strategies as st

from aiolibp2p import _accel
from aiolibp2p.core.errors import (
    DecryptError,
    Libp2pError,
    LocalProtocolError,
    NonceExhausted,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
MAXP = 65519
BROKEN = "the noise transport failed earlier and accepts no more data"


def aead(key: bytes = KEY) -> ChaCha20Poly1305:
    return ChaCha20Poly1305(key)


@pytest.fixture(scope="session", params=["key", "aead"])
def k(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """Builds what a sealer or opener is made from: the key bytes, or its AEAD object."""
    if request.param == "key":
        return lambda key=KEY: key
    return aead


def nonce(n: int) -> bytes:
    return b"\x00" * 4 + n.to_bytes(8, "little")


def reference_seal(data: bytes, start: int = 0, key: bytes = KEY) -> bytes:
    """Frames of ``data`` built directly with ``ChaCha20Poly1305.encrypt``."""
    cipher = ChaCha20Poly1305(key)
    out = b""
    for i, pos in enumerate(range(0, len(data), MAXP)):
        sealed = cipher.encrypt(nonce(start + i), data[pos : pos + MAXP], None)
        out += struct.pack(">H", len(sealed)) + sealed
    return out


def split_frames(stream: bytes) -> list[bytes]:
    frames, pos = [], 0
    while pos < len(stream):
        length = int.from_bytes(stream[pos : pos + 2], "big")
        frames.append(stream[pos + 2 : pos + 2 + length])
        pos += 2 + length
    return frames


class NoIntoAEAD:
    """A ChaCha20Poly1305 without ``encrypt_into``/``decrypt_into`` (older ``cryptography``)."""

    def __init__(self, key: bytes) -> None:
        self._aead = ChaCha20Poly1305(key)

    def encrypt(self, nonce: bytes, data: Any, ad: bytes | None) -> bytes:
        return self._aead.encrypt(nonce, bytes(data), ad)

    def decrypt(self, nonce: bytes, data: Any, ad: bytes | None) -> bytes:
        return self._aead.decrypt(nonce, bytes(data), ad)


# --- constants and construction -------------------------------------------------------------


def test_constants(impl: Any) -> None:
    nc = impl.noise_cipher
    assert (nc.HEADER_SIZE, nc.TAG_SIZE, nc.MAX_FRAME_SIZE, nc.KEY_SIZE) == (2, 16, 65535, 32)
    assert nc.MAX_PLAINTEXT_SIZE == 65519 == nc.MAX_FRAME_SIZE - nc.TAG_SIZE
    assert nc.MAX_NONCE == 2**64 - 1


@pytest.mark.parametrize("cls", ["FrameSealer", "FrameOpener"])
def test_construction(impl: Any, cls: str, k: Any) -> None:
    make = getattr(impl.noise_cipher, cls)
    obj = make(k())
    assert (obj.nonce, obj.max_nonce) == (0, 2**64 - 1)
    obj = make(k(), 5, max_nonce=9)
    assert (obj.nonce, obj.max_nonce) == (5, 9)
    obj = make(k(), nonce=2**64 - 1)
    assert obj.nonce == 2**64 - 1
    bad = [
        ({"nonce": -1}, "nonce -1 out of range [0, 18446744073709551615]"),
        ({"nonce": 10, "max_nonce": 9}, "nonce 10 out of range [0, 9]"),
        ({"max_nonce": 2**64}, "max_nonce 18446744073709551616 out of range"),
        ({"nonce": 1.0}, "nonce must be an int, not float"),
        ({"nonce": True}, "nonce must be an int, not bool"),
        ({"max_nonce": None}, "max_nonce must be an int, not NoneType"),
    ]
    for kwargs, message in bad:
        with pytest.raises(LocalProtocolError, match=message.replace("[", r"\[")):
            make(k(), **kwargs)
    expected = r"key must be 32 bytes or a ChaCha20Poly1305 object \(with (en|de)crypt\(\)\), not "
    for wrong in (object(), "k" * 32, 32, None, [0] * 32):
        with pytest.raises(LocalProtocolError, match=expected + type(wrong).__name__):
            make(wrong)


@pytest.mark.parametrize("cls", ["FrameSealer", "FrameOpener"])
@pytest.mark.parametrize("size", [0, 1, 16, 31, 33, 64])
def test_key_length(impl: Any, cls: str, size: int) -> None:
    make = getattr(impl.noise_cipher, cls)
    for kind in (bytes, bytearray, memoryview):
        with pytest.raises(LocalProtocolError, match=f"key must be 32 bytes, not {size}$"):
            make(kind(bytes(size)))


def test_key_buffer_kinds_and_forms_agree(impl: Any) -> None:
    nc = impl.noise_cipher
    data = bytes(range(200)) * 400
    expected = reference_seal(data)
    for key in (KEY, bytearray(KEY), memoryview(KEY), memoryview(b"-" + KEY)[1:], aead()):
        assert nc.FrameSealer(key).seal(data) == expected
        assert nc.FrameOpener(key).open(expected) == data
    mutable = bytearray(KEY)
    sealer = nc.FrameSealer(mutable)
    mutable[:] = bytes(32)  # the key was copied: changing the caller's buffer changes nothing
    assert sealer.seal(b"x") == reference_seal(b"x")


# --- sealing ------------------------------------------------------------------------------------


SIZES = [1, 15, 16, 100, MAXP - 1, MAXP, MAXP + 1, 2 * MAXP, 2 * MAXP + 7, 200_000]


@pytest.mark.parametrize("size", SIZES)
def test_seal_matches_reference(impl: Any, size: int, k: Any) -> None:
    data = bytes(i % 251 for i in range(size))
    sealer = impl.noise_cipher.FrameSealer(k())
    out = sealer.seal(data)
    assert type(out) is bytes
    assert out == reference_seal(data)
    frames = split_frames(out)
    assert len(frames) == -(-size // MAXP) == sealer.nonce
    assert all(len(frame) <= 65535 for frame in frames)
    assert len(out) == size + 18 * len(frames)


def test_seal_empty_is_empty(impl: Any, k: Any) -> None:
    sealer = impl.noise_cipher.FrameSealer(k())
    assert sealer.seal(b"") == b""
    assert sealer.seal(bytearray()) == b""
    assert sealer.nonce == 0


def test_nonce_is_little_endian_after_zero_bytes(impl: Any, k: Any) -> None:
    start = 2**40 + 2**32 + 5  # past 32 bits: catches a short or big-endian counter
    sealer = impl.noise_cipher.FrameSealer(k(), start)
    assert sealer.seal(b"abc") == reference_seal(b"abc", start)
    assert sealer.seal(b"def") == reference_seal(b"def", start + 1)
    assert sealer.nonce == start + 2


def test_seal_many(impl: Any, k: Any) -> None:
    nc = impl.noise_cipher
    chunks = [b"a" * 100, b"", bytearray(b"b" * 7), memoryview(b"c" * (MAXP + 3)), b"d"]
    one = nc.FrameSealer(k()).seal_many(chunks)
    separately = nc.FrameSealer(k())
    assert one == b"".join(separately.seal(chunk) for chunk in chunks)
    assert len(split_frames(one)) == 5 == separately.nonce
    assert nc.FrameSealer(k()).seal_many([]) == b""
    assert nc.FrameSealer(k()).seal_many([b"", b""]) == b""
    assert nc.FrameSealer(k()).seal_many(iter([b"x", b"y"])) == reference_seal(
        b"x"
    ) + reference_seal(b"y", 1)


@pytest.mark.parametrize(
    "make",
    [
        bytes,
        bytearray,
        memoryview,
        lambda d: memoryview(b"\xff" + d + b"\xff")[1:-1],
        lambda d: array.array("H", d),  # 2-byte items: taken as raw bytes
    ],
)
def test_any_contiguous_buffer(impl: Any, make: Any, k: Any) -> None:
    data = bytes(range(64))
    nc = impl.noise_cipher
    sealed = nc.FrameSealer(k()).seal(make(data))
    assert sealed == reference_seal(data)
    assert nc.FrameSealer(k()).seal_many([make(data)]) == sealed
    assert nc.FrameOpener(k()).open(make(sealed)) == data


def test_bad_buffers(impl: Any, k: Any) -> None:
    nc = impl.noise_cipher
    strided = memoryview(bytes(range(20)))[::2]
    for call in (nc.FrameSealer(k()).seal, nc.FrameOpener(k()).open):
        with pytest.raises(TypeError):
            call("text")
        with pytest.raises(TypeError):
            call(None)
        with pytest.raises(BufferError):
            call(strided)
    with pytest.raises(TypeError):
        nc.FrameSealer(k()).seal_many([b"ok", 3])
    with pytest.raises(BufferError):
        nc.FrameSealer(k()).seal_many([strided])


def test_bad_buffer_does_not_break_the_opener(impl: Any, k: Any) -> None:
    opener = impl.noise_cipher.FrameOpener(k())
    with pytest.raises(TypeError):
        opener.open("text")
    assert opener.open(reference_seal(b"fine")) == b"fine"


def test_bytearrays_are_released(impl: Any, k: Any) -> None:
    nc = impl.noise_cipher
    buf = bytearray(b"x" * 100)
    nc.FrameSealer(k()).seal(buf)
    nc.FrameSealer(k()).seal_many([buf, buf])
    buf.extend(b"more")  # would raise BufferError if a view were still held
    sealed = bytearray(reference_seal(b"y" * 50))
    nc.FrameOpener(k()).open(sealed)
    sealed.extend(b"more")
    bad = bytearray(b"\x00\x05abcde")
    with pytest.raises(DecryptError):
        nc.FrameOpener(k()).open(bad)
    bad.extend(b"more")


# --- opening ------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_open_whole(impl: Any, size: int, k: Any) -> None:
    data = bytes(i % 253 for i in range(size))
    opener = impl.noise_cipher.FrameOpener(k())
    out = opener.open(reference_seal(data))
    assert type(out) is bytes
    assert out == data
    assert opener.nonce == -(-size // MAXP)
    assert opener.pending == 0


@pytest.mark.parametrize("step", [1, 2, 3, 17, 18, 19, 1000, 65537, 65538])
def test_open_in_chunks(impl: Any, step: int, k: Any) -> None:
    data = bytes(i % 241 for i in range(2 * MAXP + 500)) if step > 2 else b"z" * 3000
    messages = [data[:10], data[10:], b"tail"]
    stream = b""
    n = 0
    for message in messages:
        sealed = reference_seal(message, n)
        stream += sealed
        n += len(split_frames(sealed))
    opener = impl.noise_cipher.FrameOpener(k())
    out = bytearray()
    for pos in range(0, len(stream), step):
        out += opener.open(stream[pos : pos + step])
        assert opener.pending <= 2 + 65535
    assert bytes(out) == b"".join(messages)
    assert opener.pending == 0
    assert opener.nonce == n


def test_pending_is_one_partial_frame(impl: Any, k: Any) -> None:
    stream = reference_seal(b"a" * 40) + reference_seal(b"b" * 40, 1)
    opener = impl.noise_cipher.FrameOpener(k())
    assert opener.open(stream[:1]) == b""
    assert opener.pending == 1
    assert opener.open(stream[1:10]) == b""
    assert opener.pending == 10
    assert opener.open(stream[10:70]) == b"a" * 40
    assert opener.pending == 70 - 58
    assert opener.open(stream[70:]) == b"b" * 40
    assert opener.pending == 0
    assert opener.open(b"") == b""


def test_empty_frame_is_valid(impl: Any, k: Any) -> None:
    empty = b"\x00\x10" + aead().encrypt(nonce(0), b"", None)
    opener = impl.noise_cipher.FrameOpener(k())
    assert opener.open(empty + reference_seal(b"after", 1)) == b"after"
    assert opener.nonce == 2
    with pytest.raises(DecryptError, match="nonce 2 failed authentication"):
        opener.open(b"\x00\x10" + bytes(16))  # an empty frame with a wrong tag


def test_open_with_older_cryptography(impl: Any) -> None:
    nc = impl.noise_cipher
    data = bytes(range(256)) * 600
    sealed = nc.FrameSealer(NoIntoAEAD(KEY)).seal(data)
    assert sealed == reference_seal(data)
    assert nc.FrameSealer(NoIntoAEAD(KEY)).seal_many([b"a", b"b"]) == nc.FrameSealer(
        aead()
    ).seal_many([b"a", b"b"])
    assert nc.FrameOpener(NoIntoAEAD(KEY)).open(sealed) == data
    tampered = bytearray(sealed)
    tampered[100] ^= 1
    with pytest.raises(DecryptError, match="noise frame at nonce 0 failed authentication"):
        nc.FrameOpener(NoIntoAEAD(KEY)).open(tampered)


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 1, 15])
def test_frame_shorter_than_tag(impl: Any, length: int, k: Any) -> None:
    opener = impl.noise_cipher.FrameOpener(k())
    message = f"noise frame of {length} bytes is shorter than its 16-byte tag"
    with pytest.raises(DecryptError, match=message):
        opener.open(length.to_bytes(2, "big"))  # raised on the header alone
    with pytest.raises(DecryptError, match=BROKEN):
        opener.open(reference_seal(b"x"))


def test_short_frame_header_split_across_calls(impl: Any, k: Any) -> None:
    opener = impl.noise_cipher.FrameOpener(k())
    assert opener.open(reference_seal(b"ok") + b"\x00") == b"ok"
    with pytest.raises(DecryptError, match="noise frame of 5 bytes"):
        opener.open(b"\x05")


@pytest.mark.parametrize("index", [0, 1, 5, 11, 12, 27])
def test_tampered_frame(impl: Any, index: int, k: Any) -> None:
    stream = bytearray(reference_seal(b"first") + reference_seal(b"second frame", 1))
    index += 2 + 5 + 16 + 2  # inside the body (ciphertext or tag) of the second frame
    stream[index] ^= 0x01
    opener = impl.noise_cipher.FrameOpener(k())
    with pytest.raises(DecryptError, match="noise frame at nonce 1 failed authentication") as info:
        opener.open(stream)
    assert (opener.pending, opener.nonce) == (0, 1)
    with pytest.raises(DecryptError, match=BROKEN):
        opener.open(b"")
    assert isinstance(info.value, Libp2pError)


@pytest.mark.parametrize("cut", [1, 2, 10, 2 + MAXP + 15])
def test_tampered_frame_completed_from_pending(impl: Any, cut: int, k: Any) -> None:
    """The frame that fails is the one buffered across calls (the last byte of its tag)."""
    stream = bytearray(reference_seal(b"A" * 10) + reference_seal(b"B" * MAXP, 1))
    stream[-1] ^= 0x80
    opener = impl.noise_cipher.FrameOpener(k())
    head, tail = stream[: 28 + cut], stream[28 + cut :]
    assert opener.open(head) == b"A" * 10
    assert opener.pending == cut
    with pytest.raises(DecryptError, match="noise frame at nonce 1 failed authentication"):
        opener.open(tail)
    assert (opener.pending, opener.nonce) == (0, 1)
    with pytest.raises(DecryptError, match=BROKEN):
        opener.open(reference_seal(b"x", 1))


def test_tampered_length_waits_for_more(impl: Any, k: Any) -> None:
    stream = bytearray(reference_seal(b"first") + reference_seal(b"second frame", 1))
    stream[23] ^= 0x01  # the second frame's high length byte: 28 becomes 284
    opener = impl.noise_cipher.FrameOpener(k())
    assert opener.open(stream) == b"first"
    assert opener.pending == 30
    with pytest.raises(DecryptError, match="nonce 1 failed authentication"):
        opener.open(bytes(256))


def test_wrong_key_and_wrong_nonce(impl: Any, k: Any) -> None:
    nc = impl.noise_cipher
    with pytest.raises(DecryptError, match="noise frame at nonce 0 failed authentication"):
        nc.FrameOpener(k(OTHER_KEY)).open(reference_seal(b"secret"))
    with pytest.raises(DecryptError, match="noise frame at nonce 1 failed authentication"):
        nc.FrameOpener(k(), 1).open(reference_seal(b"secret"))
    opener = nc.FrameOpener(k())
    replay = reference_seal(b"once")
    assert opener.open(replay) == b"once"
    with pytest.raises(DecryptError, match="nonce 1 failed"):
        opener.open(replay)  # a replayed frame is refused


def test_send_nonce_exhaustion(impl: Any, k: Any) -> None:
    sealer = impl.noise_cipher.FrameSealer(k(), max_nonce=3)
    for _ in range(2):
        sealer.seal(b"x")
    with pytest.raises(NonceExhausted, match=r"2 frame\(s\) at nonce 2 would reach the limit of 3"):
        sealer.seal(b"y" * (MAXP + 1))  # two frames, one nonce left: nothing is sealed
    with pytest.raises(NonceExhausted):
        sealer.seal_many([b"a", b"b"])
    assert sealer.nonce == 2
    assert sealer.seal(b"last") == reference_seal(b"last", 2)
    with pytest.raises(NonceExhausted, match=r"1 frame\(s\) at nonce 3"):
        sealer.seal(b"z")
    assert sealer.seal(b"") == b""  # nothing to seal, no nonce needed
    assert isinstance(NonceExhausted("x"), LocalProtocolError)


def test_default_limit_reserves_the_last_nonce(impl: Any, k: Any) -> None:
    nc = impl.noise_cipher
    sealer = nc.FrameSealer(k(), 2**64 - 2)
    assert sealer.seal(b"x") == reference_seal(b"x", 2**64 - 2)
    with pytest.raises(NonceExhausted):
        sealer.seal(b"x")
    opener = nc.FrameOpener(k(), 2**64 - 2)
    assert opener.open(reference_seal(b"x", 2**64 - 2)) == b"x"
    with pytest.raises(DecryptError, match="receive nonce exhausted"):
        opener.open(b"\x00\x10" + bytes(16))


def test_receive_nonce_exhaustion(impl: Any, k: Any) -> None:
    opener = impl.noise_cipher.FrameOpener(k(), max_nonce=2)
    stream = b"".join(reference_seal(b"m", i) for i in range(3))
    with pytest.raises(
        DecryptError,
        match="noise receive nonce exhausted: the peer sent frames past the limit of 2",
    ):
        opener.open(stream)
    opener = impl.noise_cipher.FrameOpener(k(), max_nonce=2)
    assert opener.open(stream[: 2 * 19]) == b"mm"
    with pytest.raises(DecryptError, match="receive nonce exhausted"):
        opener.open(stream[2 * 19 :])


def test_round_trip_between_twins_kinds(impl: Any, k: Any) -> None:
    nc = impl.noise_cipher
    sealer, opener = nc.FrameSealer(k()), nc.FrameOpener(k())
    for size in (0, 1, 100, MAXP, 3 * MAXP + 1):
        data = bytes(size)
        assert opener.open(sealer.seal(data)) == data
    assert sealer.nonce == opener.nonce


# --- differential (py vs c) ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def twins(py_impl: Any, c_impl: Any) -> tuple[Any, Any]:
    return py_impl.noise_cipher, c_impl.noise_cipher


def outcome(fn: Any, *args: Any) -> tuple[Any, ...]:
    try:
        return ("ok", fn(*args))
    except Libp2pError as exc:
        return ("error", type(exc), str(exc))
    except (TypeError, BufferError, ValueError) as exc:
        return ("error", type(exc))


def test_twins_share_names_and_method_signatures(twins: tuple[Any, Any]) -> None:
    py, c = twins
    assert sorted(py.__all__) == sorted(c.__all__)
    for name in py.__all__:
        py_obj, c_obj = getattr(py, name), getattr(c, name)
        if not isinstance(py_obj, type):
            assert py_obj == c_obj, name
            continue
        params = [
            p.name
            if p.default is p.empty
            else f"{p.name}={'MAX_NONCE' if p.default == 2**64 - 1 else p.default}"
            for p in inspect.signature(py_obj).parameters.values()
        ]
        assert c_obj.__doc__.splitlines()[0] == f"{name}({', '.join(params)})"  # embedsignature
        for method in ("seal", "seal_many", "open"):
            if hasattr(py_obj, method):
                shapes = [
                    [
                        (p.name, p.kind, p.default)
                        for p in inspect.signature(getattr(cls, method)).parameters.values()
                    ]
                    for cls in (py_obj, c_obj)
                ]
                assert shapes[0] == shapes[1], f"{name}.{method}"
        for prop in ("nonce", "max_nonce", "pending"):
            assert hasattr(py_obj, prop) == hasattr(c_obj, prop), f"{name}.{prop}"


starts = st.one_of(st.just(0), st.integers(min_value=0, max_value=2**64 - 1))
payloads = st.one_of(
    st.binary(max_size=300),
    st.integers(min_value=0, max_value=3 * MAXP).map(bytes),
    st.sampled_from([b"", b"x" * MAXP, b"y" * (MAXP + 1)]),
)


@given(st.lists(payloads, max_size=6), starts, st.integers(min_value=0, max_value=8))
def test_seal_differential(
    twins: tuple[Any, Any], k: Any, messages: list[bytes], start: int, room: int
) -> None:
    py, c = twins
    limit = min(2**64 - 1, start + room)
    py_s, c_s = py.FrameSealer(k(), start, limit), c.FrameSealer(k(), start, limit)
    for message in messages:
        assert outcome(c_s.seal, message) == outcome(py_s.seal, message)
        assert c_s.nonce == py_s.nonce
    assert outcome(c_s.seal_many, messages) == outcome(py_s.seal_many, messages)
    assert c_s.nonce == py_s.nonce


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, list[int], int]:
    """A valid stream of frames, maybe corrupted and truncated, plus split points and a limit."""
    messages = draw(st.lists(st.binary(min_size=0, max_size=120), max_size=6))
    stream = bytearray()
    for i, message in enumerate(messages):
        sealed = aead().encrypt(nonce(i), message, None)
        stream += len(sealed).to_bytes(2, "big") + sealed
    mode = draw(st.sampled_from(["valid", "tampered", "truncated", "random", "appended"]))
    if mode == "tampered" and stream:
        index = draw(st.integers(min_value=0, max_value=len(stream) - 1))
        stream[index] ^= draw(st.integers(min_value=1, max_value=255))
    elif mode == "truncated":
        stream = stream[: draw(st.integers(min_value=0, max_value=len(stream)))]
    elif mode == "random":
        stream = bytearray(draw(st.binary(max_size=200)))
    elif mode == "appended":
        stream += draw(st.binary(max_size=40))
    cuts = sorted(draw(st.lists(st.integers(min_value=0, max_value=len(stream)), max_size=5)))
    limit = draw(st.sampled_from([2**64 - 1, 0, 1, 2, 3, 5]))
    return bytes(stream), cuts, limit


@given(streams(), st.sampled_from([bytes, bytearray, memoryview]))
def test_open_differential(
    twins: tuple[Any, Any], k: Any, case: tuple[bytes, list[int], int], kind: Any
) -> None:
    py, c = twins
    stream, cuts, limit = case
    py_o, c_o = py.FrameOpener(k(), 0, limit), c.FrameOpener(k(), 0, limit)
    bounds = [0, *cuts, len(stream)]
    for lo, hi in itertools.pairwise(bounds):
        chunk = kind(stream[lo:hi])
        expected = outcome(py_o.open, chunk)
        assert outcome(c_o.open, chunk) == expected
        assert (c_o.nonce, c_o.pending) == (py_o.nonce, py_o.pending)
        if expected[0] == "error":
            assert expected[1] is DecryptError
            assert outcome(c_o.open, b"") == outcome(py_o.open, b"")


@given(st.binary(max_size=300), st.binary(min_size=32, max_size=32))
def test_open_random_bytes_only_typed_errors(
    twins: tuple[Any, Any], k: Any, data: bytes, key: bytes
) -> None:
    py, c = twins
    results = [outcome(twin.FrameOpener(k(key)).open, data) for twin in (py, c)]
    assert results[0] == results[1]
    assert results[0][0] == "ok" or results[0][1] is DecryptError


# --- the AEAD: RFC 8439 section 2.8.2 ------------------------------------------------------------

# RFC 8439 "ChaCha20 and Poly1305 for IETF Protocols", section 2.8.2, "Example and Test Vector
# for AEAD_CHACHA20_POLY1305" (key, nonce, AAD, plaintext, ciphertext and tag as printed there).
RFC_KEY = bytes(range(0x80, 0xA0))
RFC_NONCE = bytes.fromhex("070000004041424344454647")
RFC_AAD = bytes.fromhex("50515253c0c1c2c3c4c5c6c7")
RFC_PLAIN = (
    b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the "
    b"future, sunscreen would be it."
)
RFC_CIPHERTEXT = bytes.fromhex(
    "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"
    "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"
    "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
    "3ff4def08e4b7a9de576d26586cec64b6116"
)
RFC_TAG = bytes.fromhex("1ae10b594f09e26a7e902ecbd0600691")


def test_rfc8439_vector_reference_aead() -> None:
    """The vector holds for ``cryptography``, which computes every reference frame here."""
    sealed = ChaCha20Poly1305(RFC_KEY).encrypt(RFC_NONCE, RFC_PLAIN, RFC_AAD)
    assert sealed == RFC_CIPHERTEXT + RFC_TAG


def test_rfc8439_vector_compiled_libcrypto_binding(c_impl: Any) -> None:
    """The compiled twin's own EVP calls (the sequence its frames use, plus the AAD step)."""
    nc = c_impl.noise_cipher
    assert nc._aead_seal(RFC_KEY, RFC_NONCE, RFC_AAD, RFC_PLAIN) == RFC_CIPHERTEXT + RFC_TAG
    assert nc._aead_open(RFC_KEY, RFC_NONCE, RFC_AAD, RFC_CIPHERTEXT + RFC_TAG) == RFC_PLAIN
    for i in (0, 50, len(RFC_CIPHERTEXT), len(RFC_CIPHERTEXT) + 15):  # ciphertext and tag bytes
        bad = bytearray(RFC_CIPHERTEXT + RFC_TAG)
        bad[i] ^= 0x01
        with pytest.raises(DecryptError):
            nc._aead_open(RFC_KEY, RFC_NONCE, RFC_AAD, bytes(bad))
    with pytest.raises(DecryptError):  # the AAD is authenticated too
        nc._aead_open(RFC_KEY, RFC_NONCE, RFC_AAD[:-1], RFC_CIPHERTEXT + RFC_TAG)


def test_rfc8439_key_and_plaintext_as_a_noise_frame(impl: Any, k: Any) -> None:
    """The RFC's key and plaintext sealed as Noise frames (empty AAD, counter nonces 0 and
    2**64 - 2); the reference is computed independently with ``cryptography``."""
    nc = impl.noise_cipher
    for start in (0, 2**64 - 2):
        body = ChaCha20Poly1305(RFC_KEY).encrypt(nonce(start), RFC_PLAIN, None)
        frame = len(body).to_bytes(2, "big") + body
        assert nc.FrameSealer(k(RFC_KEY), start).seal(RFC_PLAIN) == frame
        assert nc.FrameOpener(k(RFC_KEY), start).open(frame) == RFC_PLAIN


# --- the compiled twin's libcrypto ---------------------------------------------------------------


def test_compiled_twin_uses_libcrypto(c_impl: Any) -> None:
    """On this Linux machine the compiled twin binds the process's libcrypto, not a fallback."""
    nc = c_impl.noise_cipher
    assert nc._LIBCRYPTO.startswith("libcrypto.so.") or os.path.isabs(nc._LIBCRYPTO)
    assert _accel.fallbacks() == {}


def _select_in_child(**env: str) -> dict[str, Any]:
    code = (
        "import json, aiolibp2p, aiolibp2p._accel as a;"
        "from aiolibp2p._accel import noise_cipher as nc;"
        "key = bytes(32);"
        "assert nc.FrameOpener(key).open(nc.FrameSealer(key).seal(b'ok')) == b'ok';"
        "print(json.dumps({'hot': aiolibp2p.accelerated(), 'build': aiolibp2p.build_info()}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    result: dict[str, Any] = json.loads(out)
    return result


@pytest.mark.skipif(_accel.NO_EXTENSIONS, reason="pure run: AIOLIBP2P_NO_EXTENSIONS is set")
@pytest.mark.parametrize(
    ("library", "why"),
    [
        ("/nonexistent/libcrypto.so.3", "/nonexistent/libcrypto.so.3: not found"),
        ("libz.so.1", "libz.so.1: lacks EVP_CIPHER_CTX_new, EVP_CIPHER_CTX_free"),
    ],
)
def test_without_libcrypto_only_noise_falls_back(library: str, why: str) -> None:
    """No usable libcrypto: noise_cipher_c refuses to import, the pure twin takes over (and
    works), every other hot path stays compiled, and build_info() says why."""
    result = _select_in_child(AIOLIBP2P_LIBCRYPTO=library)
    assert result["hot"] == {**dict.fromkeys(_accel.HOT_PATHS, "c"), "noise_cipher": "py"}
    fallbacks = result["build"]["fallbacks"]
    assert fallbacks.startswith(
        "noise_cipher: aiolibp2p._accel.noise_cipher_c: no usable libcrypto"
    )
    assert why in fallbacks


@pytest.mark.skipif(_accel.NO_EXTENSIONS, reason="pure run: AIOLIBP2P_NO_EXTENSIONS is set")
def test_libcrypto_override_by_path() -> None:
    maps = Path("/proc/self/maps").read_text(encoding="ascii", errors="replace")
    paths = {line.split()[-1] for line in maps.splitlines() if "/libcrypto.so." in line}
    if not paths:
        pytest.skip("libcrypto is not mapped into this process")
    result = _select_in_child(AIOLIBP2P_LIBCRYPTO=sorted(paths)[0])
    assert result["hot"]["noise_cipher"] == "c"
    assert "fallbacks" not in result["build"]


# --- the GIL is released for large calls -------------------------------------------------------


def test_threads_seal_and_open_in_parallel(impl: Any) -> None:
    """Separate sealers and openers in separate threads (large calls run without the GIL in
    the compiled twin): every result is still exact."""
    nc = impl.noise_cipher
    data = bytes(range(256)) * (5 * MAXP // 256)
    expected = [reference_seal(data, 0, bytes([i]) * 32) for i in range(3)]
    results: dict[int, list[bytes]] = {}

    def work(i: int) -> None:
        key = bytes([i]) * 32
        sealer, opener = nc.FrameSealer(key), nc.FrameOpener(key)
        sealed = [sealer.seal(data), sealer.seal_many([data, b"tail"])]
        results[i] = [*sealed, opener.open(b"".join(sealed))]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for i in range(3):
        assert results[i][0] == expected[i]
        frames = len(split_frames(expected[i]))
        assert results[i][1] == reference_seal(data, frames, bytes([i]) * 32) + reference_seal(
            b"tail", 2 * frames, bytes([i]) * 32
        )
        assert results[i][2] == data * 2 + b"tail"


@pytest.mark.parametrize("cls", ["FrameSealer", "FrameOpener"])
def test_second_thread_is_refused_while_the_gil_is_released(c_impl: Any, cls: str) -> None:
    """A call on an object whose large call runs without the GIL raises LocalProtocolError and
    leaves the object intact (the pure twin never releases the GIL between frames)."""
    nc = c_impl.noise_cipher
    data = bytes(16 * 1024 * 1024)  # about 4 ms of libcrypto work
    sealed = reference_seal(data) if cls == "FrameOpener" else b""
    for _attempt in range(5):
        obj = getattr(nc, cls)(KEY)
        call = obj.seal if cls == "FrameSealer" else obj.open
        result: list[bytes] = []
        worker = threading.Thread(target=lambda c=call, r=result: r.append(c(sealed or data)))
        refused = 0
        worker.start()
        while worker.is_alive():
            try:
                call(b"")
            except LocalProtocolError as exc:
                assert str(exc) == f"{cls} is in use by another thread"
                refused += 1
        worker.join()
        assert result == [data if cls == "FrameOpener" else reference_seal(data)]
        assert obj.nonce == len(split_frames(sealed or result[0]))
        if refused:
            break
    assert refused, "never caught the large call running without the GIL"


def test_seal_gather(impl: Any, k: Any) -> None:
    nc = impl.noise_cipher
    parts = [
        b"a" * 100,
        b"",
        bytearray(b"b" * 7),
        memoryview(b"c" * (MAXP + 3)),
        b"d" * (2 * MAXP - 50),
        memoryview(b"\xff" + b"e" * 33 + b"\xff")[1:-1],
    ]
    joined = b"".join(bytes(part) for part in parts)
    sealer = nc.FrameSealer(k())
    sealed = sealer.seal_gather(parts)
    assert sealed == reference_seal(joined)
    assert sealer.nonce == len(split_frames(sealed)) == -(-len(joined) // MAXP)
    at = sealer.nonce
    assert sealer.seal_gather(iter([b"x", b"y"])) == reference_seal(b"xy", at)
    assert nc.FrameSealer(k()).seal_gather([]) == b""
    assert nc.FrameSealer(k()).seal_gather([b"", bytearray()]) == b""
    assert nc.FrameSealer(k()).seal_gather([b"only"]) == reference_seal(b"only")
    with pytest.raises(TypeError):
        nc.FrameSealer(k()).seal_gather([b"ok", 3])
    with pytest.raises(BufferError):
        nc.FrameSealer(k()).seal_gather([b"ok", memoryview(bytes(range(20)))[::2]])
    buf = bytearray(b"x" * 100)
    nc.FrameSealer(k()).seal_gather([buf, b"y", buf])
    buf.extend(b"more")  # would raise BufferError if a view were still held


def test_seal_gather_refuses_past_the_nonce_limit(impl: Any, k: Any) -> None:
    sealer = impl.noise_cipher.FrameSealer(k(), 5, 6)
    with pytest.raises(NonceExhausted):
        sealer.seal_gather([b"a" * MAXP, b"b"])  # two frames, one nonce left
    assert sealer.nonce == 5
    assert sealer.seal_gather([b"a", b"b"]) == reference_seal(b"ab", 5)
    assert sealer.nonce == 6
