"""Directories and files that only this user can read or change: where the chunk cache
(``storage.cache``) keeps a remote dataset's chunks.

A chunk of a private bucket must not become readable by the other users of a host because it was
cached, and nobody else may put a file where the cache will serve it. So:

* ``private_dir`` makes a directory 0700 whatever the umask. An existing one must be a directory
  owned by this user that neither group nor others can write to; otherwise ``CacheDirError`` names
  it, says what is wrong and how to fix it. Directories the cache names itself (below its root)
  must not be symbolic links, and one of this user's that others can read (made 0755 by an older
  version) is tightened to 0700. The root, which the user chooses, may be a link and may stay
  readable (its sub-directories are private).
* ``create_new`` opens a new file 0600 with ``O_CREAT | O_EXCL | O_NOFOLLOW``: it never opens
  what is already there, a link planted at the name included. Callers write to a fresh temporary
  name in the same private directory and rename it into place.
* ``open_own`` opens an existing file with ``O_NOFOLLOW`` and returns it only when it is a regular
  file owned by this user.

Only the cache root and the directories below it are checked, not the root's parents (as ssh's
StrictModes does): pick a root in a directory others cannot rename things in (your home, or a
sticky one such as /tmp).
"""

from __future__ import annotations

import errno
import os
import stat

from ..errors import CacheDirError

_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_OPEN = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
HOW_TO_MOVE = "set DEEPLAKE_LOADER_CACHE_DIR to a directory of your own"


def _owner(uid: int) -> str:
    try:
        import pwd

        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except (ImportError, KeyError):
        return f"uid {uid}"


def private_dir(path: str, *, root: bool = False) -> None:
    """Make ``path`` (mode 0700) or check the one that is there; CacheDirError when it is not this
    user's alone. ``root``: the cache's root, chosen by the user (its parents are made as needed,
    it may be a symbolic link and it is not tightened)."""
    try:
        if root:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    else:
        os.chmod(path, 0o700)  # the umask may have taken bits away, never added: exactly 0700
        return
    st = os.stat(path) if root else os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        kind = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a directory"
        raise CacheDirError(path, f"is {kind}, where the chunk cache keeps a directory of its own",
                            f"remove it, or {HOW_TO_MOVE}")
    me = os.geteuid()
    if st.st_uid != me:
        raise CacheDirError(path, f"is owned by {_owner(st.st_uid)}, not by this user ({_owner(me)}): its owner "
                                  "could put files there that the cache would serve",
                            f"{HOW_TO_MOVE}, or remove it if it should not be there")
    if st.st_mode & 0o022:
        raise CacheDirError(path, f"is writable by {'group and others' if st.st_mode & 0o022 == 0o022 else 'group' if st.st_mode & 0o020 else 'others'} "
                                  f"(mode {stat.S_IMODE(st.st_mode):04o}): they could put files there that the "
                                  "cache would serve",
                            f"remove it (its cached chunks cannot be trusted) or run `chmod go-w '{path}'` if "
                            f"only you wrote to it, or {HOW_TO_MOVE}")
    if not root and st.st_mode & 0o077:
        os.chmod(path, 0o700)  # ours, readable by others (an older version made it 0755)


def create_new(path: str) -> int:
    """A new file at ``path``, mode 0600, open for writing (FileExistsError if anything, a link
    included, is there)."""
    fd = os.open(path, _NEW, 0o600)
    try:
        os.fchmod(fd, 0o600)  # the umask may have taken bits away: exactly 0600
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_own(path: str):
    """(fd, os.stat_result) of the regular file at ``path`` owned by this user, else None (missing,
    a link, or not this user's: the caller removes what it cannot use)."""
    try:
        fd = os.open(path, _OPEN)
    except OSError as e:
        if e.errno not in (errno.ENOENT, errno.ELOOP, errno.EACCES, errno.ENOTDIR, errno.EISDIR):
            raise
        return None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
        os.close(fd)
        return None
    return fd, st
