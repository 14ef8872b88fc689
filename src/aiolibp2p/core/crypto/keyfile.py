"""Private key files: the marshalled ``PrivateKey`` protobuf, as go-libp2p/kubo store it.

Plain synchronous file I/O (no asyncio); call it before the event loop starts or in a thread.

Writing is atomic and never exposes the key with wider permissions than ``0600``: the bytes go to
a temporary file in the same directory, created ``0600`` by :func:`tempfile.mkstemp` (``O_EXCL``)
and ``fchmod``-ed to exactly ``0600`` before anything is written, then fsync-ed and renamed over the
target (``os.replace``), and the directory is fsync-ed.  The temporary file is removed on any
failure.  Missing parent directories are created with mode ``0700``.

Reading refuses files that are not regular files or are larger than any key file can be, and raises
:class:`KeyDecodeError` when the content is not a valid ``PrivateKey``.  A key file that group or
others can access (``mode & 0o077``) is *loaded*, but a warning is logged on the
``aiolibp2p.crypto`` logger; pass ``strict_permissions=True`` to refuse such files with
:class:`InsecureKeyFile` instead.  (Loading with a warning by default keeps keys mounted from
secret stores, such as Kubernetes secrets with their default ``0644``, usable.)  Permission checks
are skipped on Windows, where POSIX modes mean nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import tempfile

from aiolibp2p.core.crypto.keys import (
    KeyType,
    PrivateKey,
    generate_private_key,
    private_key_from_protobuf,
)
from aiolibp2p.core.errors import CryptoError, KeyDecodeError

__all__ = [
    "InsecureKeyFile",
    "save_private_key_file",
    "load_private_key_file",
    "load_or_create_private_key_file",
    "MAX_KEY_FILE_SIZE",
]

logger = logging.getLogger("aiolibp2p.crypto")

#: Larger than any valid key file (an 8192-bit RSA PKCS#1 key is under 5 KiB).
MAX_KEY_FILE_SIZE = 64 * 1024
_POSIX = os.name == "posix"


class InsecureKeyFile(CryptoError, PermissionError):
    """A key file is accessible by group or others (only with ``strict_permissions=True``)."""


def _fsync_dir(directory: str) -> None:
    if not _POSIX:
        return
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems cannot fsync a directory
        pass
    finally:
        os.close(fd)


def _write_temp(data: bytes, directory: str, name: str) -> str:
    """Write ``data`` to a new ``0600`` temporary file in ``directory``; return its path."""
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)  # mkstemp already uses 0600; make it exact whatever the umask
        with os.fdopen(fd, "wb") as f:
            fd = -1
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def _makedirs_private(directory: str) -> None:
    """Create ``directory`` and any missing parents, each with mode ``0700`` (``os.makedirs``
    applies its mode to the last component only).  Existing directories are left alone."""
    if os.path.isdir(directory):
        return
    parent = os.path.dirname(directory)
    if parent and parent != directory:
        _makedirs_private(parent)
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        if not os.path.isdir(directory):
            raise


def _prepare_dir(path: str) -> tuple[str, str]:
    directory, name = os.path.split(os.path.abspath(path))
    if not name:
        raise IsADirectoryError(path)
    _makedirs_private(directory)
    return directory, name


def save_private_key_file(key: PrivateKey, path: str | os.PathLike[str]) -> None:
    """Write ``key`` to ``path`` atomically with mode ``0600``, replacing any existing file."""
    data = key.to_protobuf()
    target = os.fspath(path)
    directory, name = _prepare_dir(target)
    tmp = _write_temp(data, directory, name)
    try:
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def _create_private_key_file(key: PrivateKey, path: str) -> bool:
    """Write ``key`` to ``path`` only if nothing is there yet; return whether it was written.

    The complete file is published with ``os.link``, which fails if ``path`` exists, so two
    processes racing to create the same key file agree on one key.  Where hard links are not
    supported it falls back to an atomic replace.
    """
    directory, name = _prepare_dir(path)
    tmp = _write_temp(key.to_protobuf(), directory, name)
    try:
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:  # no hard links here (e.g. some FUSE/SMB mounts): best effort
            if os.path.lexists(path):
                return False
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    _fsync_dir(directory)
    return True


def load_private_key_file(
    path: str | os.PathLike[str], *, strict_permissions: bool = False
) -> PrivateKey:
    """Read a key file written by :func:`save_private_key_file` (or by go-libp2p/kubo).

    Raises :class:`FileNotFoundError` (and other :class:`OSError`) from the file system,
    :class:`KeyDecodeError` for bad content and, with ``strict_permissions``,
    :class:`InsecureKeyFile` for a group- or world-accessible file.
    """
    target = os.fspath(path)
    # O_NONBLOCK: opening a FIFO planted at the path must not hang (it then fails S_ISREG).
    fd = os.open(target, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise KeyDecodeError(f"key file {target!r} is not a regular file")
        if _POSIX and st.st_mode & 0o077:
            mode = stat.S_IMODE(st.st_mode)
            if strict_permissions:
                raise InsecureKeyFile(
                    f"key file {target!r} is accessible by group or others (mode {mode:04o})"
                )
            logger.warning(
                "private key file %s is accessible by group or others (mode %04o); "
                "it should be 0600",
                target,
                mode,
            )
        if st.st_size > MAX_KEY_FILE_SIZE:
            raise KeyDecodeError(f"key file {target!r} is too large ({st.st_size} bytes)")
        data = f.read(MAX_KEY_FILE_SIZE + 1)
    if len(data) > MAX_KEY_FILE_SIZE:
        raise KeyDecodeError(f"key file {target!r} is too large")
    try:
        return private_key_from_protobuf(data)
    except KeyDecodeError as exc:
        raise KeyDecodeError(f"key file {target!r} does not hold a valid key: {exc}") from exc


def load_or_create_private_key_file(
    path: str | os.PathLike[str],
    key_type: KeyType = KeyType.Ed25519,
    *,
    strict_permissions: bool = False,
) -> tuple[PrivateKey, bool]:
    """Load the key at ``path``, or generate one of ``key_type`` and save it there.

    Returns ``(key, created)``.  An existing file with bad content raises :class:`KeyDecodeError`;
    it is never overwritten.  Concurrent callers end up with the same key.
    """
    target = os.fspath(path)
    try:
        return load_private_key_file(target, strict_permissions=strict_permissions), False
    except FileNotFoundError:
        pass
    key = generate_private_key(key_type)
    if _create_private_key_file(key, target):
        return key, True
    # Someone else created it between our read and our write: theirs wins.
    return load_private_key_file(target, strict_permissions=strict_permissions), False
