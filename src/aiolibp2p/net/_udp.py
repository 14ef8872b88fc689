"""Sending bursts of UDP datagrams with fewer system calls (Linux UDP GSO).

QUIC sends a burst of equal-size datagrams (full packets) to one address.  With generic
segmentation offload (``UDP_SEGMENT``, Linux >= 4.18) one ``sendmsg`` hands the kernel up to
:data:`MAX_SEGMENTS` of them as one buffer plus the segment size; the kernel (or the NIC) cuts
it into the same datagrams on the wire.  Elsewhere, or when the kernel refuses, the caller sends
datagram by datagram.
"""

from __future__ import annotations

import socket
import struct
import sys
from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["GSO_AVAILABLE", "MAX_BYTES", "MAX_SEGMENTS", "segment_cmsg", "segment_runs", "send_run"]

#: ``UDP_SEGMENT`` from linux/udp.h (Python 3.11's socket module does not name it).
_UDP_SEGMENT = getattr(socket, "UDP_SEGMENT", 103)
_SOL_UDP = getattr(socket, "SOL_UDP", 17)
GSO_AVAILABLE = sys.platform == "linux"
#: Segments per call (the kernel's UDP_MAX_SEGMENTS is 64 on older kernels).
MAX_SEGMENTS = 64
#: Bytes per call: the whole buffer must fit one UDP datagram's length field.
MAX_BYTES = 65000
_SIZES: dict[int, list[tuple[int, int, bytes]]] = {}


def segment_cmsg(size: int) -> list[tuple[int, int, bytes]]:
    """The ancillary data that makes ``sendmsg`` cut its buffer into ``size``-byte datagrams."""
    cmsg = _SIZES.get(size)
    if cmsg is None:
        cmsg = [(_SOL_UDP, _UDP_SEGMENT, struct.pack("=H", size))]
        if len(_SIZES) < 16:  # a connection uses one or two sizes
            _SIZES[size] = cmsg
    return cmsg


def segment_runs(datagrams: Sequence[tuple[bytes, Any]]) -> Iterator[tuple[int, int, int]]:
    """``(start, stop, segment size)`` of each run of ``datagrams`` that one segmented send
    can carry: the same address, equal sizes (the last one may be shorter), at most
    :data:`MAX_SEGMENTS` and :data:`MAX_BYTES`.  A run of one is a plain datagram."""
    n = len(datagrams)
    i = 0
    while i < n:
        data, addr = datagrams[i]
        size = len(data)
        j = i + 1
        total = size
        while j < n and j - i < MAX_SEGMENTS and datagrams[j][1] == addr:
            nxt = len(datagrams[j][0])
            if nxt > size or total + nxt > MAX_BYTES:
                break
            total += nxt
            j += 1
            if nxt < size:
                break  # a shorter datagram ends a run
        yield i, j, size
        i = j


def send_run(
    sock: socket.socket, datagrams: Sequence[tuple[bytes, Any]], run: tuple[int, int, int]
) -> None:
    """Send one run of :func:`segment_runs` with one ``sendmsg`` (``UDP_SEGMENT``).  Raises
    ``OSError`` (``BlockingIOError`` when the socket buffer is full) with nothing sent."""
    start, stop, size = run
    # The datagrams as the iovec: the kernel reads them as one buffer, no joined copy.
    buffers = [datagrams[k][0] for k in range(start, stop)]
    sock.sendmsg(buffers, segment_cmsg(size), 0, datagrams[start][1])
