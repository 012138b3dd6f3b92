"""Our temporary names, and removing the ones a killed run left behind.

Every atomic write (workdir files, SavedModel versions) first writes to a
hidden name that starts with ``.tmp-`` in the target's folder and renames it.
A run killed before the rename leaves that name behind. New names carry the
writer's process id and host (``.tmp-<pid>@<host>~...``), so a later run can
tell an orphan (its process is gone) from a write in progress:

    * ``.tmp-<pid>@<this host>~...``: an orphan when that process is gone;
    * any other ``.tmp-`` name (older releases, or written from another host
      to shared storage): an orphan when untouched for `STALE_SECONDS`.

`remove_orphans` only ever considers those names, of the kinds asked for
(folders, ``*.weights.h5`` files), and logs every path it removes.
"""

import os
import re
import shutil
import socket
import time

from absl import logging

PREFIX = ".tmp-"
STALE_SECONDS = 3600.0  # no write of ours takes an hour without touching its file
_OURS = re.compile(r"^\.tmp-(\d+)@([^~/]+)~")


def _host():
    return socket.gethostname().replace("~", "_")


def temp_prefix(tag=""):
    """``.tmp-<pid>@<host>~<tag>``: a temporary name this process owns."""
    return f"{PREFIX}{os.getpid()}@{_host()}~{tag}"


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


def is_orphan(path, now=None):
    """True when `path` (one of our temporary names) has no live writer."""
    name = os.path.basename(path)
    if not name.startswith(PREFIX):
        return False
    m = _OURS.match(name)
    if m and m.group(2) == _host():
        pid = int(m.group(1))
        return pid != os.getpid() and not _alive(pid)
    now = time.time() if now is None else now
    try:
        return now - os.path.getmtime(path) > STALE_SECONDS
    except OSError:
        return False


def remove_orphans(directory, folders=True, weights_files=True, keep=()):
    """Removes orphaned temporary folders / ``.tmp-*.weights.h5`` files.

    Args:
        directory: where to look (not recursive); absent is fine.
        folders: remove orphaned ``.tmp-*`` folders.
        weights_files: remove orphaned ``.tmp-*.weights.h5`` files.
        keep: names to leave alone (handled by the caller).

    Returns:
        The removed paths (each also logged).
    """
    if not os.path.isdir(directory):
        return []
    removed = []
    for name in sorted(os.listdir(directory)):
        if not name.startswith(PREFIX) or name in keep:
            continue
        path = os.path.join(directory, name)
        is_dir = os.path.isdir(path) and not os.path.islink(path)
        wanted = (folders and is_dir) or (
            weights_files and not is_dir and name.endswith(".weights.h5")
        )
        if not wanted or not is_orphan(path):
            continue
        if is_dir:
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.remove(path)
        logging.warning("removed %s, left behind by an interrupted run", path)
        removed.append(path)
    return removed
