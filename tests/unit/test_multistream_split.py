"""multistream-select message framing and splitting, run against both twins (``impl`` fixture).

Vectors: ``multiformats/multistream-select`` ``README.md`` (commit 9a1fbe8, 2025-04-28): ``na``
is ``0x036e610a`` and ``ls`` is ``0x036c730a``; Notes 1 and 2: a uvarint length prefix that counts
the trailing ``\\n``.  The 1024-byte limit on that length is go-multistream's (``multistream.go``
``lpReadBuf``: ``if length > 1024 { return nil, ErrTooLarge }``), also used by js-libp2p.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiolibp2p.core.errors import (
    Libp2pError,
    LocalProtocolError,
    MessageTooLarge,
    NegotiationError,
    VarintError,
)

HEADER = "/multistream/1.0.0"

# Payloads: any bytes but "\n", at most 1023 bytes (the prefix counts the "\n": at most 1024).
payloads = st.binary(max_size=1023).filter(lambda b: b"\n" not in b)


def test_readme_vectors(impl: Any) -> None:
    ms = impl.multistream
    assert ms.encode_message("na") == bytes.fromhex("036e610a")
    assert ms.encode_message(b"ls") == bytes.fromhex("036c730a")
    assert ms.encode_message(HEADER) == b"\x13/multistream/1.0.0\n"
    assert ms.split_messages(bytes.fromhex("036e610a036c730a")) == ([b"na", b"ls"], 8)


def test_max_message_size(impl: Any) -> None:
    assert impl.multistream.MAX_MESSAGE_SIZE == 1024


def test_encode_str_bytes_and_buffers_agree(impl: Any) -> None:
    ms = impl.multistream
    expected = b"\x0f/ipfs/id/1.0.0\n"
    for payload in ("/ipfs/id/1.0.0", b"/ipfs/id/1.0.0", bytearray(b"/ipfs/id/1.0.0")):
        assert ms.encode_message(payload) == expected
    assert ms.encode_message(memoryview(b"/ipfs/id/1.0.0")) == expected
    assert ms.encode_message("/é") == b"\x04/\xc3\xa9\n"  # UTF-8, length in bytes
    assert ms.encode_message("") == b"\x01\n"


def test_encode_messages_one_write(impl: Any) -> None:
    ms = impl.multistream
    joined = ms.encode_messages([HEADER, "/noise"])
    assert joined == ms.encode_message(HEADER) + ms.encode_message("/noise")
    assert ms.encode_messages([]) == b""
    assert ms.encode_messages(p for p in ("/a", b"/b")) == b"\x03/a\n\x03/b\n"
    assert ms.split_messages(joined) == ([HEADER.encode(), b"/noise"], len(joined))


@pytest.mark.parametrize("payload", ["/a\nb", b"\n", b"x\n"])
def test_encode_rejects_newline(impl: Any, payload: Any) -> None:
    with pytest.raises(LocalProtocolError, match="newline"):
        impl.multistream.encode_message(payload)


def test_encode_size_limit(impl: Any) -> None:
    ms = impl.multistream
    longest = b"/" + b"p" * 1022  # 1023 bytes + "\n" = 1024: the largest accepted
    framed = ms.encode_message(longest)
    assert framed[:2] == b"\x80\x08"  # uvarint(1024)
    assert ms.split_messages(framed) == ([longest], len(framed))
    with pytest.raises(LocalProtocolError, match="exceeds the limit"):
        ms.encode_message(longest + b"p")
    with pytest.raises(LocalProtocolError):
        ms.encode_messages(["/ok", "/" + "q" * 2000])


@pytest.mark.parametrize("payload", [None, 5, ["/a"], object()])
def test_encode_rejects_other_types(impl: Any, payload: Any) -> None:
    with pytest.raises(LocalProtocolError, match="bytes or str"):
        impl.multistream.encode_message(payload)


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_split_buffer_types(impl: Any, kind: Any) -> None:
    ms = impl.multistream
    stream = ms.encode_messages([HEADER, "/yamux/1.0.0", "na"]) + b"\x05/ab"
    buf = kind(bytearray(stream)) if kind is memoryview else kind(stream)
    messages, end = ms.split_messages(buf)
    assert messages == [HEADER.encode(), b"/yamux/1.0.0", b"na"]
    assert all(type(message) is bytes for message in messages)
    assert stream[end:] == b"\x05/ab"


def test_split_every_cut_point(impl: Any) -> None:
    ms = impl.multistream
    parts = [HEADER, "/noise", "", "na", "/" + "x" * 300]
    frames = [ms.encode_message(p) for p in parts]
    stream = b"".join(frames)
    boundaries = [0]
    for frame in frames:
        boundaries.append(boundaries[-1] + len(frame))
    for cut in range(len(stream) + 1):
        messages, end = ms.split_messages(stream[:cut])
        complete = max(i for i, b in enumerate(boundaries) if b <= cut)
        assert messages == [p.encode() for p in parts[:complete]]
        assert end == boundaries[complete]


def test_split_with_offset(impl: Any) -> None:
    ms = impl.multistream
    stream = b"\x00\x00" + ms.encode_messages(["/a", "/b"])
    assert ms.split_messages(stream, 2) == ([b"/a", b"/b"], len(stream))
    assert ms.split_messages(stream, len(stream)) == ([], len(stream))
    with pytest.raises(LocalProtocolError):
        ms.split_messages(stream, -1)
    with pytest.raises(LocalProtocolError):
        ms.split_messages(stream, len(stream) + 1)


def test_split_empty_message_is_an_error(impl: Any) -> None:
    with pytest.raises(NegotiationError, match="empty"):
        impl.multistream.split_messages(b"\x03na\n\x00")


def test_split_missing_newline_is_an_error(impl: Any) -> None:
    with pytest.raises(NegotiationError, match="newline"):
        impl.multistream.split_messages(b"\x03na\n\x02na")
    # ...but only once the whole message is there.
    assert impl.multistream.split_messages(b"\x03na\n\x03na") == ([b"na"], 4)


def test_split_max_size_before_body(impl: Any) -> None:
    ms = impl.multistream
    with pytest.raises(MessageTooLarge) as info:
        ms.split_messages(b"\x03na\n" + b"\x81\x08")  # uvarint(1025), no body yet
    assert (info.value.length, info.value.limit) == (1025, 1024)
    with pytest.raises(MessageTooLarge):
        ms.split_messages(b"\x14", max_size=19)
    assert ms.split_messages(b"\x14", max_size=20) == ([], 0)
    assert ms.split_messages(b"\x81", max_size=0) == ([], 0)  # prefix incomplete


def test_split_bad_varint(impl: Any) -> None:
    with pytest.raises(VarintError):
        impl.multistream.split_messages(b"\x80\x00")
    with pytest.raises(VarintError):
        impl.multistream.split_messages(b"\xff" * 10, max_size=2**70)


def test_split_ls_response(impl: Any) -> None:
    """An ``ls`` reply is one LP message whose body is a list of messages, then a "\\n"."""
    ms = impl.multistream
    protocols = ["/ipfs/id/1.0.0", "/ipfs/ping/1.0.0", "/x/" + "y" * 1000]
    inner = ms.encode_messages(protocols)
    reply = impl.varint.encode_lp(inner + b"\n")
    with pytest.raises(MessageTooLarge):
        ms.split_messages(reply)  # larger than one protocol id
    (body,), end = ms.split_messages(reply, max_size=64 * 1024)
    assert end == len(reply)
    assert ms.split_messages(body) == ([p.encode() for p in protocols], len(body))


def test_split_releases_buffer_on_error(impl: Any) -> None:
    buf = bytearray(b"\x02na")
    with pytest.raises(NegotiationError):
        impl.multistream.split_messages(buf)
    buf.clear()  # BufferError if an export had leaked


@given(st.lists(payloads, max_size=8), st.sampled_from([bytes, bytearray, memoryview]))
def test_prop_round_trip(impl: Any, parts: list[bytes], kind: Any) -> None:
    ms = impl.multistream
    stream = ms.encode_messages(parts)
    buf = kind(bytearray(stream)) if kind is memoryview else kind(stream)
    assert ms.split_messages(buf) == (parts, len(stream))


@given(st.lists(payloads, max_size=8), st.data())
def test_prop_truncated(impl: Any, parts: list[bytes], data: st.DataObject) -> None:
    ms = impl.multistream
    stream = ms.encode_messages(parts)
    cut = data.draw(st.integers(min_value=0, max_value=len(stream)))
    messages, end = ms.split_messages(stream[:cut])
    assert messages == parts[: len(messages)]
    assert end == len(ms.encode_messages(messages)) <= cut
    assert (messages == parts) == (cut == len(stream))


@given(st.binary(max_size=200), st.integers(min_value=0, max_value=2000))
def test_prop_random_bytes_typed_errors_only(impl: Any, data: bytes, max_size: int) -> None:
    ms = impl.multistream
    try:
        messages, end = ms.split_messages(data, max_size=max_size)
    except Libp2pError:
        return
    assert 0 <= end <= len(data)
    assert impl.varint.split_lp(data[:end], max_size=max_size)[0] == [m + b"\n" for m in messages]
