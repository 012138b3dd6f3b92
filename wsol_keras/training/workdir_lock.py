"""One writer per directory: an exclusive lock held while a tool writes.

`wsol-train` holds its workdir's lock for the whole run (training, precise BN,
final weights, report), `wsol-eval` while it evaluates into the workdir, the
exporters on their ``--output`` folder. A second process that wants the same
directory gets :class:`DirectoryLocked`, naming the holder (pid, host, start
time, tool), instead of interleaving its files with the first's.

Mechanism: ``fcntl.flock`` (exclusive, non-blocking) on ``<dir>/.wsol.lock``.
The kernel drops the lock when its process dies, however it dies (SIGKILL, out
of memory), so a killed run leaves no live lock: its leftover file is simply
locked again by the next run, which logs that it took it over. The
alternative, an ``O_EXCL`` file plus a pid liveness check, cannot check a pid
on another host (shared storage), mistakes a reused pid for the holder, and
two newcomers removing the same stale file race each other; flock has none of
these. The holder's details in the file are only for the message. The file
is removed on release (under the lock; an acquirer that locked a removed file
retries on the new one), and a directory the lock itself created is removed
again if nothing else was written into it, so a run refused by a later check
leaves nothing behind. A filesystem without flock support (some network
mounts) gets a warning and no lock.

The lock is re-entrant within a process (wsol-train's evaluation runs under
the training's lock).
"""

import contextlib
import datetime
import errno
import fcntl
import json
import os
import socket
import sys

from absl import logging

LOCK_FILE = ".wsol.lock"

_held = {}  # real path of the directory -> nesting depth in this process


class DirectoryLocked(OSError):
    """Another process holds the directory's lock (an OSError: one CLI line)."""


def _describe(info):
    if not info:
        return "another process (its details are not written yet)"
    return (
        f"{info.get('tool', '?')} (pid {info.get('pid', '?')} on host "
        f"{info.get('host', '?')}, started {info.get('started', '?')})"
    )


def _read_info(fd):
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        raw = os.read(fd, 65536)
        return json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except (OSError, ValueError):
        return {}


def _acquire(directory, path, tool):
    """The locked fd of `path` (a fresh file if the holder removed it meanwhile)."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(_read_info(fd))
            os.close(fd)
            raise DirectoryLocked(
                f"{directory} is in use by {holder}; refusing to write into it "
                f"at the same time as {tool}. Wait for it to finish, or use "
                f"another directory (lock file {path})"
            ) from None
        except OSError:
            os.close(fd)
            raise
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # locked a file its holder removed on release: retry


@contextlib.contextmanager
def directory_lock(directory, tool):
    """Holds `directory`'s exclusive lock for the `with` block.

    Args:
        directory: the folder written (created if missing; removed again at
            the end if the lock created it and it stayed empty).
        tool: the holder's name in the messages ("wsol-train").

    Raises:
        DirectoryLocked: naming the holder, when another process holds it.
    """
    key = os.path.realpath(directory)
    if key in _held:  # re-entrant within this process
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    if "://" in directory:  # remote: the tool's own check refuses or handles it
        yield
        return
    created = _missing_folders(directory)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, LOCK_FILE)
    try:
        fd = _acquire(directory, path, tool)
    except DirectoryLocked:
        raise
    except OSError as e:
        if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
            raise
        logging.warning("%s: no file locking here (%s); not locked", directory, e)
        yield
        return
    previous = _read_info(fd)
    if previous:
        logging.warning("took over the lock of %s, which is no longer running", _describe(previous))
    info = {
        "tool": tool,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "argv": sys.argv,
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode("utf-8"), 0)
    _held[key] = 1
    try:
        yield
    finally:
        del _held[key]
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)  # releases the lock
        for folder in created:  # deepest first; only those still empty
            try:
                os.rmdir(folder)
            except OSError:
                break


def _missing_folders(directory):
    """The folders `os.makedirs(directory)` would create, deepest first."""
    missing = []
    folder = os.path.abspath(directory)
    while not os.path.isdir(folder) and folder != os.path.dirname(folder):
        missing.append(folder)
        folder = os.path.dirname(folder)
    return missing
