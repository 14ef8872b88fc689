"""Process-wide tuning that a node process may apply once at start-up (the library never does).

:func:`tune_malloc` raises glibc's mmap threshold to 4 MiB and its trim threshold to 32 MiB.
A bulk receiver allocates and frees a few 64-320 KiB buffers per socket read (the decrypted
Noise frames, each stream's payload, the application's read); with glibc's defaults those are
mmapped, or trimmed back to the kernel, as they are freed and page-faulted in again on the next
read: about a fifth of the receiver's CPU at 1 GiB/s.  ``aiolibp2p node`` applies it unless
``--no-tune-malloc`` is given; the benchmark children apply it unless
``AIOLIBP2P_BENCH_MALLOC=default``.  The cost is memory held back from the kernel: at most the
trim threshold of free heap per process.
"""

from __future__ import annotations

import sys

__all__ = ["MALLOC_MMAP_THRESHOLD", "MALLOC_TRIM_THRESHOLD", "tune_malloc"]

#: Allocations at least this large are mmapped (glibc's default starts at 128 KiB).
MALLOC_MMAP_THRESHOLD = 4 << 20
#: Free heap beyond this is returned to the kernel (glibc's default starts at 128 KiB).
MALLOC_TRIM_THRESHOLD = 32 << 20
_M_TRIM_THRESHOLD = -1  # mallopt parameters (glibc <malloc.h>)
_M_MMAP_THRESHOLD = -3


def tune_malloc() -> bool:
    """Apply the thresholds above to this process; False where it does not apply (not glibc)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl has no mallopt
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    ok: bool = mallopt(_M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD) == 1
    trimmed: bool = mallopt(_M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD) == 1
    return ok and trimmed
