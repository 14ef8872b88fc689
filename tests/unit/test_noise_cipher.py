"""Noise transport frames (``noise_cipher`` twins): each test runs against both twins (``impl``),
and differential tests compare the twins on random, truncated and tampered input.

The frame format is libp2p/specs ``noise/README.md`` "Wire Format" (2-byte big-endian length,
Noise messages of at most 65535 bytes); the nonce encoding is the Noise spec rev 34, section
12.3 (ChaChaPoly: 32 zero bits then the 64-bit little-endian counter).  The reference ciphertexts
below are computed independently with ``ChaCha20Poly1305.encrypt``.
"""

from __future__ import annotations

import array
import inspect
import itertools
import struct
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from hypothesis import given
from hypothesis import strategies as st

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
    assert (nc.HEADER_SIZE, nc.TAG_SIZE, nc.MAX_FRAME_SIZE) == (2, 16, 65535)
    assert nc.MAX_PLAINTEXT_SIZE == 65519 == nc.MAX_FRAME_SIZE - nc.TAG_SIZE
    assert nc.MAX_NONCE == 2**64 - 1


@pytest.mark.parametrize("cls", ["FrameSealer", "FrameOpener"])
def test_construction(impl: Any, cls: str) -> None:
    make = getattr(impl.noise_cipher, cls)
    obj = make(aead())
    assert (obj.nonce, obj.max_nonce) == (0, 2**64 - 1)
    obj = make(aead(), 5, max_nonce=9)
    assert (obj.nonce, obj.max_nonce) == (5, 9)
    obj = make(aead(), nonce=2**64 - 1)
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
            make(aead(), **kwargs)
    with pytest.raises(LocalProtocolError, match="aead must be a ChaCha20Poly1305"):
        make(object())


# --- sealing ------------------------------------------------------------------------------------


SIZES = [1, 15, 16, 100, MAXP - 1, MAXP, MAXP + 1, 2 * MAXP, 2 * MAXP + 7, 200_000]


@pytest.mark.parametrize("size", SIZES)
def test_seal_matches_reference(impl: Any, size: int) -> None:
    data = bytes(i % 251 for i in range(size))
    sealer = impl.noise_cipher.FrameSealer(aead())
    out = sealer.seal(data)
    assert type(out) is bytes
    assert out == reference_seal(data)
    frames = split_frames(out)
    assert len(frames) == -(-size // MAXP) == sealer.nonce
    assert all(len(frame) <= 65535 for frame in frames)
    assert len(out) == size + 18 * len(frames)


def test_seal_empty_is_empty(impl: Any) -> None:
    sealer = impl.noise_cipher.FrameSealer(aead())
    assert sealer.seal(b"") == b""
    assert sealer.seal(bytearray()) == b""
    assert sealer.nonce == 0


def test_nonce_is_little_endian_after_zero_bytes(impl: Any) -> None:
    start = 2**40 + 2**32 + 5  # past 32 bits: catches a short or big-endian counter
    sealer = impl.noise_cipher.FrameSealer(aead(), start)
    assert sealer.seal(b"abc") == reference_seal(b"abc", start)
    assert sealer.seal(b"def") == reference_seal(b"def", start + 1)
    assert sealer.nonce == start + 2


def test_seal_many(impl: Any) -> None:
    nc = impl.noise_cipher
    chunks = [b"a" * 100, b"", bytearray(b"b" * 7), memoryview(b"c" * (MAXP + 3)), b"d"]
    one = nc.FrameSealer(aead()).seal_many(chunks)
    separately = nc.FrameSealer(aead())
    assert one == b"".join(separately.seal(chunk) for chunk in chunks)
    assert len(split_frames(one)) == 5 == separately.nonce
    assert nc.FrameSealer(aead()).seal_many([]) == b""
    assert nc.FrameSealer(aead()).seal_many([b"", b""]) == b""
    assert nc.FrameSealer(aead()).seal_many(iter([b"x", b"y"])) == reference_seal(
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
def test_any_contiguous_buffer(impl: Any, make: Any) -> None:
    data = bytes(range(64))
    nc = impl.noise_cipher
    sealed = nc.FrameSealer(aead()).seal(make(data))
    assert sealed == reference_seal(data)
    assert nc.FrameSealer(aead()).seal_many([make(data)]) == sealed
    assert nc.FrameOpener(aead()).open(make(sealed)) == data


def test_bad_buffers(impl: Any) -> None:
    nc = impl.noise_cipher
    strided = memoryview(bytes(range(20)))[::2]
    for call in (nc.FrameSealer(aead()).seal, nc.FrameOpener(aead()).open):
        with pytest.raises(TypeError):
            call("text")
        with pytest.raises(TypeError):
            call(None)
        with pytest.raises(BufferError):
            call(strided)
    with pytest.raises(TypeError):
        nc.FrameSealer(aead()).seal_many([b"ok", 3])
    with pytest.raises(BufferError):
        nc.FrameSealer(aead()).seal_many([strided])


def test_bad_buffer_does_not_break_the_opener(impl: Any) -> None:
    opener = impl.noise_cipher.FrameOpener(aead())
    with pytest.raises(TypeError):
        opener.open("text")
    assert opener.open(reference_seal(b"fine")) == b"fine"


def test_bytearrays_are_released(impl: Any) -> None:
    nc = impl.noise_cipher
    buf = bytearray(b"x" * 100)
    nc.FrameSealer(aead()).seal(buf)
    nc.FrameSealer(aead()).seal_many([buf, buf])
    buf.extend(b"more")  # would raise BufferError if a view were still held
    sealed = bytearray(reference_seal(b"y" * 50))
    nc.FrameOpener(aead()).open(sealed)
    sealed.extend(b"more")
    bad = bytearray(b"\x00\x05abcde")
    with pytest.raises(DecryptError):
        nc.FrameOpener(aead()).open(bad)
    bad.extend(b"more")


# --- opening ------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_open_whole(impl: Any, size: int) -> None:
    data = bytes(i % 253 for i in range(size))
    opener = impl.noise_cipher.FrameOpener(aead())
    out = opener.open(reference_seal(data))
    assert type(out) is bytes
    assert out == data
    assert opener.nonce == -(-size // MAXP)
    assert opener.pending == 0


@pytest.mark.parametrize("step", [1, 2, 3, 17, 18, 19, 1000, 65537, 65538])
def test_open_in_chunks(impl: Any, step: int) -> None:
    data = bytes(i % 241 for i in range(2 * MAXP + 500)) if step > 2 else b"z" * 3000
    messages = [data[:10], data[10:], b"tail"]
    stream = b""
    n = 0
    for message in messages:
        sealed = reference_seal(message, n)
        stream += sealed
        n += len(split_frames(sealed))
    opener = impl.noise_cipher.FrameOpener(aead())
    out = bytearray()
    for pos in range(0, len(stream), step):
        out += opener.open(stream[pos : pos + step])
        assert opener.pending <= 2 + 65535
    assert bytes(out) == b"".join(messages)
    assert opener.pending == 0
    assert opener.nonce == n


def test_pending_is_one_partial_frame(impl: Any) -> None:
    stream = reference_seal(b"a" * 40) + reference_seal(b"b" * 40, 1)
    opener = impl.noise_cipher.FrameOpener(aead())
    assert opener.open(stream[:1]) == b""
    assert opener.pending == 1
    assert opener.open(stream[1:10]) == b""
    assert opener.pending == 10
    assert opener.open(stream[10:70]) == b"a" * 40
    assert opener.pending == 70 - 58
    assert opener.open(stream[70:]) == b"b" * 40
    assert opener.pending == 0
    assert opener.open(b"") == b""


def test_empty_frame_is_valid(impl: Any) -> None:
    cipher = aead()
    empty = b"\x00\x10" + cipher.encrypt(nonce(0), b"", None)
    opener = impl.noise_cipher.FrameOpener(cipher)
    assert opener.open(empty + reference_seal(b"after", 1)) == b"after"
    assert opener.nonce == 2


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
def test_frame_shorter_than_tag(impl: Any, length: int) -> None:
    opener = impl.noise_cipher.FrameOpener(aead())
    message = f"noise frame of {length} bytes is shorter than its 16-byte tag"
    with pytest.raises(DecryptError, match=message):
        opener.open(length.to_bytes(2, "big"))  # raised on the header alone
    with pytest.raises(DecryptError, match=BROKEN):
        opener.open(reference_seal(b"x"))


def test_short_frame_header_split_across_calls(impl: Any) -> None:
    opener = impl.noise_cipher.FrameOpener(aead())
    assert opener.open(reference_seal(b"ok") + b"\x00") == b"ok"
    with pytest.raises(DecryptError, match="noise frame of 5 bytes"):
        opener.open(b"\x05")


@pytest.mark.parametrize("index", [0, 1, 5, 11, 12, 27])
def test_tampered_frame(impl: Any, index: int) -> None:
    stream = bytearray(reference_seal(b"first") + reference_seal(b"second frame", 1))
    index += 2 + 5 + 16 + 2  # inside the body (ciphertext or tag) of the second frame
    stream[index] ^= 0x01
    opener = impl.noise_cipher.FrameOpener(aead())
    with pytest.raises(DecryptError) as info:
        opener.open(stream)
    assert opener.pending == 0
    with pytest.raises(DecryptError, match=BROKEN):
        opener.open(b"")
    assert isinstance(info.value, Libp2pError)


def test_tampered_length_waits_for_more(impl: Any) -> None:
    stream = bytearray(reference_seal(b"first") + reference_seal(b"second frame", 1))
    stream[23] ^= 0x01  # the second frame's high length byte: 28 becomes 284
    opener = impl.noise_cipher.FrameOpener(aead())
    assert opener.open(stream) == b"first"
    assert opener.pending == 30
    with pytest.raises(DecryptError, match="nonce 1 failed authentication"):
        opener.open(bytes(256))


def test_wrong_key_and_wrong_nonce(impl: Any) -> None:
    nc = impl.noise_cipher
    with pytest.raises(DecryptError, match="noise frame at nonce 0 failed authentication"):
        nc.FrameOpener(aead(OTHER_KEY)).open(reference_seal(b"secret"))
    with pytest.raises(DecryptError, match="noise frame at nonce 1 failed authentication"):
        nc.FrameOpener(aead(), 1).open(reference_seal(b"secret"))
    opener = nc.FrameOpener(aead())
    replay = reference_seal(b"once")
    assert opener.open(replay) == b"once"
    with pytest.raises(DecryptError, match="nonce 1 failed"):
        opener.open(replay)  # a replayed frame is refused


def test_send_nonce_exhaustion(impl: Any) -> None:
    sealer = impl.noise_cipher.FrameSealer(aead(), max_nonce=3)
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


def test_default_limit_reserves_the_last_nonce(impl: Any) -> None:
    nc = impl.noise_cipher
    sealer = nc.FrameSealer(aead(), 2**64 - 2)
    assert sealer.seal(b"x") == reference_seal(b"x", 2**64 - 2)
    with pytest.raises(NonceExhausted):
        sealer.seal(b"x")
    opener = nc.FrameOpener(aead(), 2**64 - 2)
    assert opener.open(reference_seal(b"x", 2**64 - 2)) == b"x"
    with pytest.raises(DecryptError, match="receive nonce exhausted"):
        opener.open(b"\x00\x10" + bytes(16))


def test_receive_nonce_exhaustion(impl: Any) -> None:
    opener = impl.noise_cipher.FrameOpener(aead(), max_nonce=2)
    stream = b"".join(reference_seal(b"m", i) for i in range(3))
    with pytest.raises(
        DecryptError,
        match="noise receive nonce exhausted: the peer sent frames past the limit of 2",
    ):
        opener.open(stream)
    opener = impl.noise_cipher.FrameOpener(aead(), max_nonce=2)
    assert opener.open(stream[: 2 * 19]) == b"mm"
    with pytest.raises(DecryptError, match="receive nonce exhausted"):
        opener.open(stream[2 * 19 :])


def test_round_trip_between_twins_kinds(impl: Any) -> None:
    nc = impl.noise_cipher
    sealer, opener = nc.FrameSealer(aead()), nc.FrameOpener(aead())
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
    twins: tuple[Any, Any], messages: list[bytes], start: int, room: int
) -> None:
    py, c = twins
    limit = min(2**64 - 1, start + room)
    py_s, c_s = py.FrameSealer(aead(), start, limit), c.FrameSealer(aead(), start, limit)
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
    twins: tuple[Any, Any], case: tuple[bytes, list[int], int], kind: Any
) -> None:
    py, c = twins
    stream, cuts, limit = case
    py_o, c_o = py.FrameOpener(aead(), 0, limit), c.FrameOpener(aead(), 0, limit)
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
    twins: tuple[Any, Any], data: bytes, key: bytes
) -> None:
    py, c = twins
    results = [outcome(twin.FrameOpener(ChaCha20Poly1305(key)).open, data) for twin in (py, c)]
    assert results[0] == results[1]
    assert results[0][0] == "ok" or results[0][1] is DecryptError
