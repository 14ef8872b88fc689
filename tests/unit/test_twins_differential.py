"""Differential tests: on the same input the two twins return equal results or raise the same
exception class (and, for the library's own errors, the same message).

Inputs mix random bytes with valid streams that were then corrupted, so that both the happy
paths and every error path are reached; offsets and limits are drawn out of range too.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiolibp2p.core.errors import Libp2pError

Outcome = tuple[Any, ...]


@pytest.fixture(scope="session")
def twins(py_impl: Any, c_impl: Any) -> tuple[Any, Any]:
    """``(py, c)``: both twin sets, skipped with the c fixture when extensions are deselected."""
    return py_impl, c_impl


def outcome(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Outcome:
    try:
        return ("ok", fn(*args, **kwargs))
    except Libp2pError as exc:
        return ("error", type(exc), str(exc), getattr(exc, "__dict__", {}))
    except (TypeError, BufferError, ValueError, UnicodeError) as exc:
        return ("error", type(exc))  # messages come from CPython and may differ


def same(py: Callable[..., Any], c: Callable[..., Any], *args: Any, **kwargs: Any) -> Outcome:
    expected = outcome(py, *args, **kwargs)
    got = outcome(c, *args, **kwargs)
    assert got == expected, (args, kwargs)
    return expected


def _uv(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _lp_stream(bodies: list[bytes]) -> bytes:
    return b"".join(_uv(len(body)) + body for body in bodies)


@st.composite
def corrupted(draw: st.DrawFn, stream: bytes) -> bytes:
    data = bytearray(stream)
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        if not data:
            break
        index = draw(st.integers(min_value=0, max_value=len(data) - 1))
        data[index] = draw(st.integers(min_value=0, max_value=255))
    cut = draw(st.integers(min_value=0, max_value=len(data)))
    return bytes(data[:cut]) + draw(st.binary(max_size=4))


lp_streams = st.lists(st.binary(max_size=300), max_size=8).map(_lp_stream)
ms_streams = st.lists(
    st.one_of(
        st.sampled_from([b"/multistream/1.0.0", b"na", b"ls", b"/noise", b""]),
        st.binary(max_size=200),
    ).map(lambda b: b + b"\n"),
    max_size=8,
).map(_lp_stream)
varints = st.integers(min_value=0, max_value=2**63 - 1).map(_uv)
bad_varints = st.sampled_from(
    [b"\x80\x00", b"\x81\x00", b"\xff\x80\x00", b"\x80" * 8 + b"\x00", b"\x80" * 9, b"\xff" * 10]
)


def inputs(valid: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=64),
        valid,
        valid.flatmap(corrupted),
        st.tuples(valid, bad_varints).map(b"".join),
        st.lists(
            st.sampled_from([b"\x80", b"\xff", b"\x00", b"\x01", b"\x7f", b"\n"]), max_size=14
        ).map(b"".join),
    )


buffer_kind = st.sampled_from(["bytes", "bytearray", "memoryview", "memoryview-slice"])
# Mostly in range (so that the parsers run), sometimes anything at all: an ``("at", i)`` is
# resolved against the input's length by ``at()``; anything else is passed as it is.
offsets = st.one_of(
    st.just(("at", 0)),
    st.just(("at", 0)),
    st.tuples(st.just("at"), st.integers(min_value=0, max_value=2**16)),
    st.tuples(st.just("at"), st.integers(min_value=0, max_value=2**16)),
    st.tuples(st.just("at"), st.integers(min_value=0, max_value=2**16)),
    st.integers(),
    st.sampled_from([None, 1.5]),
)
limits = st.one_of(
    st.integers(min_value=0, max_value=400),
    st.integers(min_value=0, max_value=400),
    st.integers(min_value=0, max_value=400),
    st.sampled_from([-1, 2**63, 2**80, None, "10"]),
)
ints = st.one_of(
    st.integers(min_value=0, max_value=2**63 - 1),
    st.integers(min_value=-(2**65), max_value=2**65),
    st.sampled_from([True, 1.0, "1", None]),
)


def at(offset: Any, data: bytes | bytearray) -> Any:
    if isinstance(offset, tuple):
        return offset[1] % (len(data) + 1)
    return offset


def wrap(kind: str, data: bytes) -> Any:
    if kind == "bytes":
        return data
    if kind == "bytearray":
        return bytearray(data)
    if kind == "memoryview":
        return memoryview(data)
    return memoryview(b"\xff" + data + b"\x80")[1:-1]


# --- varint -------------------------------------------------------------------------------------


@given(ints)
def test_encode_uvarint(twins: tuple[Any, Any], value: Any) -> None:
    py_impl, c_impl = twins
    same(py_impl.varint.encode_uvarint, c_impl.varint.encode_uvarint, value)
    same(py_impl.varint.uvarint_size, c_impl.varint.uvarint_size, value)


@given(ints, st.integers(min_value=0, max_value=12), offsets, st.booleans())
def test_encode_uvarint_into(
    twins: tuple[Any, Any], value: Any, size: int, offset: Any, read_only: bool
) -> None:
    py_impl, c_impl = twins
    py_buf, c_buf = (bytes(size) if read_only else bytearray(b"\xee" * size) for _ in range(2))
    expected = outcome(py_impl.varint.encode_uvarint_into, value, py_buf, at(offset, py_buf))
    assert outcome(c_impl.varint.encode_uvarint_into, value, c_buf, at(offset, c_buf)) == expected
    assert py_buf == c_buf


@given(inputs(varints), buffer_kind, offsets)
def test_decode_uvarint(twins: tuple[Any, Any], data: bytes, kind: str, offset: Any) -> None:
    py_impl, c_impl = twins
    same(
        py_impl.varint.decode_uvarint,
        c_impl.varint.decode_uvarint,
        wrap(kind, data),
        at(offset, data),
    )


@given(inputs(lp_streams), buffer_kind, offsets, limits)
def test_decode_lp(
    twins: tuple[Any, Any], data: bytes, kind: str, offset: Any, max_size: Any
) -> None:
    py_impl, c_impl = twins
    same(
        py_impl.varint.decode_lp,
        c_impl.varint.decode_lp,
        wrap(kind, data),
        at(offset, data),
        max_size=max_size,
    )


@given(inputs(lp_streams), buffer_kind, offsets, limits)
def test_split_lp(
    twins: tuple[Any, Any], data: bytes, kind: str, offset: Any, max_size: Any
) -> None:
    py_impl, c_impl = twins
    same(
        py_impl.varint.split_lp,
        c_impl.varint.split_lp,
        wrap(kind, data),
        at(offset, data),
        max_size=max_size,
    )


@given(st.one_of(st.binary(max_size=300), st.sampled_from(["text", 3, None])), buffer_kind)
def test_encode_lp(twins: tuple[Any, Any], data: Any, kind: str) -> None:
    py_impl, c_impl = twins
    arg = wrap(kind, data) if isinstance(data, bytes) else data
    same(py_impl.varint.encode_lp, c_impl.varint.encode_lp, arg)


# --- multistream --------------------------------------------------------------------------------


@given(inputs(ms_streams), buffer_kind, offsets, st.one_of(st.just(1024), limits))
def test_split_messages(
    twins: tuple[Any, Any], data: bytes, kind: str, offset: Any, max_size: Any
) -> None:
    py_impl, c_impl = twins
    same(
        py_impl.multistream.split_messages,
        c_impl.multistream.split_messages,
        wrap(kind, data),
        at(offset, data),
        max_size=max_size,
    )
    same(py_impl.multistream.split_messages, c_impl.multistream.split_messages, data)


payload_values = st.one_of(
    st.binary(max_size=1100),
    st.text(max_size=600),
    st.sampled_from(["/multistream/1.0.0", "na", "\ud800", None, 7, b"a\nb"]),
)


@given(payload_values, buffer_kind)
def test_encode_message(twins: tuple[Any, Any], payload: Any, kind: str) -> None:
    py_impl, c_impl = twins
    arg = wrap(kind, payload) if isinstance(payload, bytes) else payload
    same(py_impl.multistream.encode_message, c_impl.multistream.encode_message, arg)


@given(st.lists(payload_values, max_size=5))
def test_encode_messages(twins: tuple[Any, Any], payloads: list[Any]) -> None:
    py_impl, c_impl = twins
    same(py_impl.multistream.encode_messages, c_impl.multistream.encode_messages, payloads)


def test_public_constants_equal(twins: tuple[Any, Any]) -> None:
    py_impl, c_impl = twins
    assert py_impl.varint.MAX_UVARINT == c_impl.varint.MAX_UVARINT
    assert py_impl.varint.MAX_UVARINT_LEN == c_impl.varint.MAX_UVARINT_LEN
    assert py_impl.multistream.MAX_MESSAGE_SIZE == c_impl.multistream.MAX_MESSAGE_SIZE


def test_signatures_equal(twins: tuple[Any, Any]) -> None:
    """Same parameter names, kinds and defaults (annotations aside) for every public function."""
    for name in ("varint", "multistream"):
        py_mod, c_mod = (getattr(impl, name) for impl in twins)
        assert sorted(py_mod.__all__) == sorted(c_mod.__all__)
        for attr in py_mod.__all__:
            py_obj, c_obj = getattr(py_mod, attr), getattr(c_mod, attr)
            if not callable(py_obj):
                assert py_obj == c_obj, attr
                continue
            shapes = [
                [(p.name, p.kind, p.default) for p in inspect.signature(f).parameters.values()]
                for f in (py_obj, c_obj)
            ]
            assert shapes[0] == shapes[1], f"{name}.{attr}"


# --- noise_cipher -------------------------------------------------------------------------------
# Random keys, start nonces near both ends of the counter, frame sizes around the 65519-byte
# split, then the sealed stream damaged (a flipped bit, truncation, a dropped or swapped frame,
# garbage) and fed to both openers in random pieces.  More cases in test_noise_cipher.py.

NOISE_MAXP = 65519
noise_keys = st.binary(min_size=32, max_size=32)
noise_forms = st.sampled_from(["key", "bytearray", "aead"])
noise_starts = st.one_of(
    st.just(0),
    st.integers(min_value=0, max_value=2**64 - 2),
    st.integers(min_value=2**64 - 9, max_value=2**64 - 2),
)
noise_sizes = st.one_of(
    st.integers(min_value=0, max_value=300),
    st.integers(min_value=0, max_value=300),
    st.integers(min_value=NOISE_MAXP - 2, max_value=NOISE_MAXP + 2),
    st.integers(min_value=0, max_value=3 * NOISE_MAXP + 5),
)


def noise_key(form: str, key: bytes) -> Any:
    if form == "key":
        return key
    if form == "bytearray":
        return bytearray(key)
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    return ChaCha20Poly1305(key)


def noise_frames(stream: bytes) -> list[bytes]:
    frames, pos = [], 0
    while pos + 2 <= len(stream):
        end = pos + 2 + int.from_bytes(stream[pos : pos + 2], "big")
        frames.append(stream[pos:end])
        pos = end
    return frames


@st.composite
def noise_damage(draw: st.DrawFn, stream: bytes) -> bytes:
    frames = noise_frames(stream)
    mode = draw(st.sampled_from(["none", "flip", "truncate", "drop", "swap", "garbage"]))
    if mode == "flip" and stream:
        data = bytearray(stream)
        data[draw(st.integers(min_value=0, max_value=len(data) - 1))] ^= 1 << draw(
            st.integers(min_value=0, max_value=7)
        )
        return bytes(data)
    if mode == "truncate":
        return stream[: draw(st.integers(min_value=0, max_value=len(stream)))]
    if mode == "drop" and frames:
        del frames[draw(st.integers(min_value=0, max_value=len(frames) - 1))]
    elif mode == "swap" and len(frames) > 1:
        i = draw(st.integers(min_value=0, max_value=len(frames) - 2))
        frames[i], frames[i + 1] = frames[i + 1], frames[i]
    elif mode == "garbage":
        at = draw(st.integers(min_value=0, max_value=len(frames)))
        frames.insert(at, draw(st.binary(max_size=40)))
    return b"".join(frames)


@given(st.data())
def test_noise_seal_then_damaged_open(twins: tuple[Any, Any], data: st.DataObject) -> None:
    py, c = (impl.noise_cipher for impl in twins)
    key, form, start = data.draw(noise_keys), data.draw(noise_forms), data.draw(noise_starts)
    rng = random.Random(data.draw(st.integers(min_value=0, max_value=2**32)))
    messages = [rng.randbytes(size) for size in data.draw(st.lists(noise_sizes, max_size=4))]
    limit = data.draw(st.sampled_from([2**64 - 1, start + 1, start + 5])) % 2**64
    limit = max(limit, start)
    sealers = [twin.FrameSealer(noise_key(form, key), start, limit) for twin in (py, c)]
    sealed = []
    for message in messages[:-1]:
        result = same(sealers[0].seal, sealers[1].seal, wrap(data.draw(buffer_kind), message))
        assert sealers[0].nonce == sealers[1].nonce
        if result[0] == "ok":
            sealed.append(result[1])
    result = same(sealers[0].seal_many, sealers[1].seal_many, messages[-1:] * 2)
    assert sealers[0].nonce == sealers[1].nonce
    if result[0] == "ok":
        sealed.append(result[1])
    stream = data.draw(noise_damage(b"".join(sealed)))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=4)))
    openers = [twin.FrameOpener(noise_key(form, key), start, limit) for twin in (py, c)]
    for lo, hi in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        same(openers[0].open, openers[1].open, wrap(data.draw(buffer_kind), stream[lo:hi]))
        assert (openers[0].nonce, openers[0].pending) == (openers[1].nonce, openers[1].pending)


@given(st.data())
def test_noise_seal_gather_is_seal_of_the_join(twins: tuple[Any, Any], data: st.DataObject) -> None:
    """Both twins' ``seal_gather(parts)`` give the bytes (and nonces) of ``seal(join(parts))``,
    whatever the parts' sizes: frame cuts fall inside parts and parts span frames."""
    py, c = (impl.noise_cipher for impl in twins)
    key, form, start = data.draw(noise_keys), data.draw(noise_forms), data.draw(noise_starts)
    rng = random.Random(data.draw(st.integers(min_value=0, max_value=2**32)))
    sizes = data.draw(st.lists(noise_sizes, max_size=6))
    parts = [wrap(data.draw(buffer_kind), rng.randbytes(size)) for size in sizes]
    joined = b"".join(bytes(part) for part in parts)
    limit = max(start, data.draw(st.sampled_from([2**64 - 1, start + 1, start + 5])) % 2**64)
    gather = [twin.FrameSealer(noise_key(form, key), start, limit) for twin in (py, c)]
    result = same(gather[0].seal_gather, gather[1].seal_gather, parts)
    reference = py.FrameSealer(noise_key(form, key), start, limit)
    assert result == outcome(reference.seal, joined)
    assert gather[0].nonce == gather[1].nonce == reference.nonce
