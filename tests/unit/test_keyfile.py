"""Private key files: format, 0600 from creation, atomic replace, strict loading."""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from aiolibp2p.core.crypto import (
    InsecureKeyFile,
    KeyType,
    generate_private_key,
    load_or_create_private_key_file,
    load_private_key_file,
    private_key_from_protobuf,
    save_private_key_file,
)
from aiolibp2p.core.crypto import keyfile as keyfile_module
from aiolibp2p.core.errors import KeyDecodeError

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")

VECTORS = json.loads(
    (Path(__file__).resolve().parent.parent / "vectors" / "peer_ids.json").read_text()
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask0() -> Iterator[None]:
    """The most permissive umask: the code, not the umask, must keep the key private."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_save_and_load_roundtrip(tmp_path: Path) -> None:
    key = generate_private_key()
    path = tmp_path / "identity.key"
    save_private_key_file(key, path)
    assert path.read_bytes() == key.to_protobuf()  # the marshalled PrivateKey, nothing else
    assert load_private_key_file(path) == key
    assert load_private_key_file(str(path)) == key


@posix_only
def test_save_mode_0600_and_parent_dirs_0700(tmp_path: Path, umask0: None) -> None:
    path = tmp_path / "a" / "b" / "identity.key"
    save_private_key_file(generate_private_key(KeyType.Secp256k1), path)
    assert _mode(path) == 0o600
    assert _mode(tmp_path / "a") == 0o700
    assert _mode(tmp_path / "a" / "b") == 0o700
    assert sorted(os.listdir(path.parent)) == ["identity.key"]  # no temp file left behind


@posix_only
def test_temp_file_is_0600_before_any_byte_is_written(
    tmp_path: Path, umask0: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No window with wider permissions: check the mode at every write/fsync/rename."""
    path = tmp_path / "identity.key"
    seen: list[tuple[str, int]] = []
    real_fsync, real_replace = os.fsync, os.replace
    real_fdopen = os.fdopen

    def fdopen(fd: int, *args: object, **kwargs: object) -> object:
        seen.append(("fdopen", stat.S_IMODE(os.fstat(fd).st_mode)))
        return real_fdopen(fd, *args, **kwargs)  # type: ignore[call-overload]

    def fsync(fd: int) -> None:
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode):
            seen.append(("fsync", stat.S_IMODE(st.st_mode)))
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        assert os.path.dirname(src) == str(tmp_path)  # same directory: rename is atomic
        assert not os.path.exists(dst)
        seen.append(("replace", _mode(Path(src))))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fdopen", fdopen)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    save_private_key_file(generate_private_key(), path)
    assert [name for name, _ in seen] == ["fdopen", "fsync", "replace"]
    assert all(mode == 0o600 for _, mode in seen), seen


@posix_only
def test_overwrite_replaces_atomically_and_fixes_mode(tmp_path: Path) -> None:
    path = tmp_path / "identity.key"
    path.write_bytes(b"old")
    path.chmod(0o644)
    key = generate_private_key()
    save_private_key_file(key, path)
    assert _mode(path) == 0o600
    assert load_private_key_file(path) == key
    assert os.listdir(tmp_path) == ["identity.key"]


def test_failed_write_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "identity.key"

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space"):
        save_private_key_file(generate_private_key(), path)
    assert os.listdir(tmp_path) == []


def test_failed_replace_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "identity.key"
    old = generate_private_key()
    save_private_key_file(old, path)

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(5, "I/O error")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="I/O error"):
        save_private_key_file(generate_private_key(), path)
    assert os.listdir(tmp_path) == ["identity.key"]
    monkeypatch.undo()
    assert load_private_key_file(path) == old


def test_save_to_a_directory_path_fails_cleanly(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        save_private_key_file(generate_private_key(), tmp_path)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\x00",
        b"not a key at all",
        bytes.fromhex(VECTORS["keys"][0]["public_key"]),  # a public key is not a private key
        bytes.fromhex(VECTORS["keys"][0]["private_key"])[:-1],  # truncated
        bytes.fromhex(VECTORS["keys"][0]["private_key"]) + b"\x00",  # trailing garbage
        b"\x08\x09\x12\x01\x00",  # unknown key type
        b"-----BEGIN PRIVATE KEY-----\n",
    ],
)
def test_load_wrong_content_raises_key_decode_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "identity.key"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(KeyDecodeError):
        load_private_key_file(path)


def test_load_too_large(tmp_path: Path) -> None:
    path = tmp_path / "identity.key"
    path.write_bytes(b"\x08" * (keyfile_module.MAX_KEY_FILE_SIZE + 1))
    path.chmod(0o600)
    with pytest.raises(KeyDecodeError):
        load_private_key_file(path)


@posix_only
def test_load_non_regular_files(tmp_path: Path) -> None:
    with pytest.raises((KeyDecodeError, IsADirectoryError)):
        load_private_key_file(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(KeyDecodeError):  # and it must not block waiting for a writer
        load_private_key_file(fifo)


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_private_key_file(tmp_path / "missing.key")


@pytest.mark.parametrize("vector", VECTORS["keys"], ids=lambda v: v["key_type"])
def test_load_spec_vector_key_file(tmp_path: Path, vector: dict[str, str]) -> None:
    """A key file written by go-libp2p/kubo is the same marshalled PrivateKey."""
    path = tmp_path / "identity.key"
    path.write_bytes(bytes.fromhex(vector["private_key"]))
    path.chmod(0o600)
    key = load_private_key_file(path)
    assert key == private_key_from_protobuf(bytes.fromhex(vector["private_key"]))


@posix_only
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o666])
def test_group_or_world_accessible_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: int
) -> None:
    path = tmp_path / "identity.key"
    key = generate_private_key()
    save_private_key_file(key, path)
    path.chmod(mode)
    with caplog.at_level(logging.WARNING, logger="aiolibp2p.crypto"):
        assert load_private_key_file(path) == key
    assert any(
        r.levelno == logging.WARNING and r.name == "aiolibp2p.crypto" and f"{mode:04o}" in r.message
        for r in caplog.records
    )
    with pytest.raises(InsecureKeyFile):
        load_private_key_file(path, strict_permissions=True)
    with pytest.raises(PermissionError):  # InsecureKeyFile is a PermissionError too
        load_private_key_file(path, strict_permissions=True)


@posix_only
def test_private_file_does_not_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "identity.key"
    save_private_key_file(generate_private_key(), path)
    with caplog.at_level(logging.DEBUG, logger="aiolibp2p.crypto"):
        load_private_key_file(path, strict_permissions=True)
    assert caplog.records == []


@pytest.mark.parametrize("key_type", [KeyType.Ed25519, KeyType.Secp256k1, KeyType.ECDSA])
def test_load_or_create(tmp_path: Path, key_type: KeyType) -> None:
    path = tmp_path / "sub" / "identity.key"
    key, created = load_or_create_private_key_file(path, key_type)
    assert created is True
    assert key.key_type is key_type
    if os.name == "posix":
        assert _mode(path) == 0o600
    again, created_again = load_or_create_private_key_file(path, key_type)
    assert created_again is False
    assert again == key
    assert os.listdir(path.parent) == ["identity.key"]


def test_load_or_create_default_is_ed25519(tmp_path: Path) -> None:
    key, created = load_or_create_private_key_file(tmp_path / "k")
    assert created and key.key_type is KeyType.Ed25519


def test_load_or_create_never_overwrites_a_bad_file(tmp_path: Path) -> None:
    path = tmp_path / "identity.key"
    path.write_bytes(b"garbage")
    path.chmod(0o600)
    with pytest.raises(KeyDecodeError):
        load_or_create_private_key_file(path)
    assert path.read_bytes() == b"garbage"


def test_load_or_create_race_keeps_the_first_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process creates the file between our failed load and our write: its key wins."""
    path = tmp_path / "identity.key"
    theirs = generate_private_key()
    real_generate = keyfile_module.generate_private_key

    def generate_after_the_other_process(key_type: KeyType = KeyType.Ed25519) -> object:
        save_private_key_file(theirs, path)
        return real_generate(key_type)

    monkeypatch.setattr(keyfile_module, "generate_private_key", generate_after_the_other_process)
    key, created = load_or_create_private_key_file(path)
    assert created is False
    assert key == theirs
    assert load_private_key_file(path) == theirs
    assert os.listdir(tmp_path) == ["identity.key"]
