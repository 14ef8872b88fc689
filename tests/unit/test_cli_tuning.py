"""``aiolibp2p.cli.tuning.tune_malloc``: glibc's thresholds really change (checked in a child
process, since the setting is process-wide), and the library never applies it by itself."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# A child that mallocs 1 MiB through libc and reports how many chunks glibc mmapped for it
# (mallinfo2().hblks), before and after tune_malloc().
_CHILD = textwrap.dedent(
    """
    import ctypes, sys
    import aiolibp2p  # importing the library must not tune anything
    from aiolibp2p.cli.tuning import tune_malloc

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = (ctypes.c_size_t,)
    libc.free.argtypes = (ctypes.c_void_p,)

    def mmapped_for_1mib():
        before = libc.mallinfo2().hblks
        p = libc.malloc(1 << 20)
        during = libc.mallinfo2().hblks
        libc.free(p)
        return during - before

    default = mmapped_for_1mib()
    tuned_ok = tune_malloc()
    tuned = mmapped_for_1mib()
    print(default, int(tuned_ok), tuned)
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_tune_malloc_moves_1_mib_allocations_off_mmap() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    default, tuned_ok, tuned = (int(x) for x in out)
    assert default == 1  # glibc's default: a 1 MiB block is mmapped
    assert tuned_ok == 1
    assert tuned == 0  # after tuning it comes from the heap


def test_node_command_has_the_opt_out() -> None:
    from aiolibp2p.cli.main import _parser

    args = _parser().parse_args(["node", "--no-tune-malloc"])
    assert args.no_tune_malloc is True
    assert _parser().parse_args(["node"]).no_tune_malloc is False
