"""The on-disk chunk cache is private to its user and serves only what it wrote (storage/cache.py,
storage/private.py): directories 0700 and files 0600 whatever the umask; a directory owned by
someone else, or writable by others, is refused with an error naming it, what is wrong and the
fix; a link is never followed; an entry whose bytes do not match the hash stored with it is a miss
and is removed; the byte limit holds across processes.

CI runs these as root: another owner is made with os.chown (root can), modes with chmod."""

from __future__ import annotations

import os
import secrets
import stat
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from deeplake_loader.storage.cache import ChunkCache

URL = "s3://private-bucket/dataset"
OTHER_UID = 4242  # no user of this machine: someone else
ROOT = Path(__file__).resolve().parents[2]


def payload(k: int, n: int) -> bytes:
    return np.random.default_rng(k).integers(0, 256, n, dtype=np.uint8).tobytes()


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def open_umask():
    """The most permissive umask: the modes must come from the cache, not from the environment."""
    old = os.umask(0)
    yield
    os.umask(old)


def test_directories_are_0700_and_files_0600_whatever_the_umask(tmp_path, open_umask):
    root = tmp_path / "cache"
    cache = ChunkCache(URL, 10_000_000, str(root))
    cache.put("images/chunks/a", "etag1", payload(1, 5000))
    entry = Path(cache._file("images/chunks/a", "etag1"))
    assert mode(root) == 0o700
    assert mode(cache.dir) == 0o700 and mode(entry.parent) == 0o700
    files = [p for p in root.rglob("*") if p.is_file()]
    assert entry in files and len(files) >= 3  # the entry, the URL label, the lock
    assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}


def test_an_older_versions_readable_directory_is_tightened(tmp_path):
    cache = ChunkCache(URL, 10_000_000, str(tmp_path))
    cache.put("c/1", "t", payload(1, 100))
    os.chmod(cache.dir, 0o755)  # as the cache made it before
    ChunkCache(URL, 10_000_000, str(tmp_path))
    assert mode(cache.dir) == 0o700


def _planted(tmp_path):
    """A cache folder for URL holding an entry someone else forged with the cache's own format: c/1
    at etag 't' = b'planted' bytes."""
    cache = ChunkCache(URL, 10_000_000, str(tmp_path))
    cache.put("c/1", "t", b"planted" * 100)
    return cache


@pytest.mark.parametrize("what", ["root", "dataset", "entries"])
def test_a_directory_owned_by_someone_else_is_refused(tmp_path, what):
    """Someone else made the folder (its name is predictable from the URL) and put a chunk in it:
    opening the cache fails, naming the folder, its owner and what to do, and nothing is served."""
    cache = _planted(tmp_path)
    target = {"root": str(tmp_path), "dataset": cache.dir,
              "entries": os.path.dirname(cache._file("c/1", "t"))}[what]
    for dirpath, dirnames, filenames in os.walk(target):
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), OTHER_UID, OTHER_UID, follow_symlinks=False)
    os.chown(target, OTHER_UID, OTHER_UID)
    with pytest.raises(PermissionError) as info:
        ChunkCache(URL, 10_000_000, str(tmp_path)).get("c/1", "t")
    err = info.value
    assert type(err).__name__ == "CacheDirError" and err.path == target
    msg = str(err)
    assert f"'{target}'" in msg and f"owned by uid {OTHER_UID}" in msg and "not by this user" in msg
    assert "DEEPLAKE_LOADER_CACHE_DIR" in msg  # how to fix it


@pytest.mark.parametrize("bits", [0o777, 0o770, 0o707])
@pytest.mark.parametrize("what", ["root", "dataset"])
def test_a_directory_others_can_write_to_is_refused(tmp_path, bits, what):
    cache = _planted(tmp_path)
    target = str(tmp_path) if what == "root" else cache.dir
    os.chmod(target, bits)
    with pytest.raises(PermissionError) as info:
        ChunkCache(URL, 10_000_000, str(tmp_path))
    msg = str(info.value)
    assert f"'{target}'" in msg and f"mode {bits:04o}" in msg and "writable by" in msg and "chmod go-w" in msg


def test_a_foreign_owned_entry_is_not_served(tmp_path):
    """An entry file that is not this user's (in a folder that is) is a miss, and is removed."""
    cache = _planted(tmp_path)
    path = cache._file("c/1", "t")
    os.chown(path, OTHER_UID, OTHER_UID)
    assert cache.get("c/1", "t") is None and not os.path.lexists(path)


def test_a_link_in_place_of_an_entry_is_not_followed(tmp_path):
    cache = ChunkCache(URL, 10_000_000, str(tmp_path / "cache"))
    cache.put("c/1", "t", payload(1, 5000))
    path = cache._file("c/1", "t")
    elsewhere = tmp_path / "elsewhere"
    os.replace(path, elsewhere)  # a valid entry, outside the cache
    os.symlink(elsewhere, path)
    assert cache.get("c/1", "t") is None and cache.get_range("c/1", "t", 0, 10) is None
    assert not os.path.lexists(path) and elsewhere.exists()  # the link removed, its target untouched


def test_temporary_files_never_open_what_is_already_there(tmp_path, monkeypatch):
    """A link planted where the writer's temporary file will be (its name made predictable here):
    the writer never writes through it; the file it points to keeps its bytes."""
    import threading

    cache = ChunkCache(URL, 10_000_000, str(tmp_path / "cache"))
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    data = payload(3, 4000)
    path = cache._file("c/3", "t")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    token = "0123456789abcdef"
    monkeypatch.setattr(secrets, "token_hex", lambda n=None: token)
    n = len(data) + 48
    for name in (f"{path}.tmp-{n}-{os.getpid()}-{token}",  # this version's name
                 f"{path}.tmp-{os.getpid()}-{threading.get_ident()}"):  # an older version's
        os.symlink(victim, name)
    cache.put("c/3", "t", data)
    assert victim.read_bytes() == b"precious"
    assert cache.get("c/3", "t") in (None, data)


@pytest.mark.parametrize("damage", ["flip", "swap"])
def test_an_entry_that_does_not_match_its_hash_is_a_miss_and_is_removed(tmp_path, damage):
    """A byte of the chunk changed (the length trailer still right), or the entry of another chunk
    copied over it: not served (whole or by range), and removed."""
    cache = ChunkCache(URL, 10_000_000, str(tmp_path))
    cache.put("c/1", "t", payload(1, 5000))
    cache.put("c/2", "t", payload(2, 5000))
    path = cache._file("c/1", "t")
    if damage == "flip":
        with open(path, "r+b") as f:
            f.seek(1234)
            byte = f.read(1)
            f.seek(1234)
            f.write(bytes([byte[0] ^ 1]))
    else:
        with open(cache._file("c/2", "t"), "rb") as f:
            other = f.read()
        with open(path, "wb") as f:
            f.write(other)
    fresh = ChunkCache(URL, 10_000_000, str(tmp_path))  # a process that has not checked it yet
    assert fresh.get_range("c/1", "t", 0, 100) is None
    assert not os.path.exists(path)
    cache.put("c/1", "t", payload(1, 5000))
    assert fresh.get("c/1", "t") == payload(1, 5000)
    assert fresh.get_range("c/1", "t", 10, 20) == payload(1, 5000)[10:20]


WRITER = """
import fcntl, os, sys, time
import numpy as np
from deeplake_loader.storage.cache import ChunkCache
url, root, who, limit = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
cache = ChunkCache(url, limit, root)
worst = 0
for k in range(40):
    cache.put(f"c/{who}/{k}", "t", np.random.default_rng(who * 100 + k).integers(0, 256, 90_000, dtype=np.uint8).tobytes())
    # every byte in the folder now, entries and temporary files, measured under the cache's lock
    with open(os.path.join(cache.dir, ".lock"), "rb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        total = sum(f.stat().st_size for d in os.scandir(cache.dir) if d.is_dir() for f in os.scandir(d.path))
        fcntl.flock(lock, fcntl.LOCK_UN)
    worst = max(worst, total)
print(worst)
"""


def test_the_byte_limit_holds_across_processes(tmp_path):
    """Three processes fill one 1 MB cache at once with 90 kB chunks (3.6 MB each): measured after
    every write, under the cache's lock, the folder never holds more than the limit."""
    limit = 1_000_000
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, URL, str(tmp_path), str(who), str(limit)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for who in range(3)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    worst = [int(out) for out, _ in outs]
    assert all(0 < w <= limit for w in worst), worst
    cache = ChunkCache(URL, limit, str(tmp_path))
    assert 0 < cache.size() <= limit
    assert cache.in_use() == cache.size()  # the count agrees with the folder once writers are done
    kept = [(who, k) for who in range(3) for k in range(40) if cache.get(f"c/{who}/{k}", "t") is not None]
    assert kept and all(cache.get(f"c/{w}/{k}", "t") == payload(w * 100 + k, 90_000) for w, k in kept)
