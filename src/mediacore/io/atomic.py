"""Atomic file output: write to a hidden temporary file next to the target,
then ``os.replace`` it into place; on any failure (including
KeyboardInterrupt) the temporary file is removed and the target is untouched.

Temporary names carry their owner (``.NAME.PID@HOST.RANDOM.part.EXT``), so a
process that cleans up after a killed run (:func:`remove_stale_temporaries`)
removes only what no running process is writing."""

from __future__ import annotations

import os
import re
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from mediacore.errors import MediaError

TEMP_MARKER = ".part"

#: a temporary file written on another host counts as abandoned once unchanged this long (seconds)
FOREIGN_STALE_S = 3600.0

_OWNER = re.compile(r"\.(?P<pid>\d+)@(?P<host>[A-Za-z0-9_-]+)\.[^.]+$")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "_", socket.gethostname()) or "host"


def temporary_owner(name: str) -> tuple[int, str] | None:
    """(pid, host) encoded in a temporary file name, or None (not ours, or an old-style name)."""
    stem, _ext = os.path.splitext(os.path.basename(name))
    if not stem.endswith(TEMP_MARKER):
        return None
    m = _OWNER.search(stem[: -len(TEMP_MARKER)])
    return (int(m.group("pid")), m.group("host")) if m else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def is_stale_temporary(path: str) -> bool:
    """Is *path* a temporary file of :func:`atomic_output` that nobody is writing?

    Its owner ran on this host and has exited; or it ran on another host and
    the file has not changed for :data:`FOREIGN_STALE_S`; or the name carries
    no owner (written by an older version)."""
    name = os.path.basename(path)
    stem, _ext = os.path.splitext(name)
    if not (name.startswith(".") and stem.endswith(TEMP_MARKER)):
        return False
    owner = temporary_owner(name)
    if owner is None:
        return True
    pid, host = owner
    if host == _host():
        return not _alive(pid)
    try:
        return time.time() - os.stat(path).st_mtime > FOREIGN_STALE_S
    except FileNotFoundError:
        return False


def remove_stale_temporaries(directory: str) -> list[str]:
    """Delete the abandoned temporary files (:func:`is_stale_temporary`) under
    *directory* (recursively); return their paths.  Temporaries of processes
    still running, here or on other hosts, are left alone."""
    removed = []
    for root, _dirs, files in os.walk(directory):
        for f in files:
            p = os.path.join(root, f)
            if is_stale_temporary(p):
                try:
                    os.unlink(p)
                    removed.append(p)
                except FileNotFoundError:
                    pass
    return removed


def _default_mode() -> int:
    """0o666 minus the process umask, read without changing it (Linux); 0o644 otherwise."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o644


@contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[str]:
    """Yield a temporary path in the target's directory; on normal exit move it
    onto *path* atomically, on error delete it.

    The temporary name is ``.<stem>.<pid>@<host>.<random>.part<ext>``: unique
    per process, owned (see :func:`is_stale_temporary`), and with the
    extension (and so FFmpeg's format guess) preserved.  The final file gets the
    permissions of the file it replaces, or 0o666 & ~umask for a new file.
    """
    target = os.path.abspath(os.fspath(path))
    directory = os.path.dirname(target)
    if not os.path.isdir(directory):
        raise MediaError(f"{os.fspath(path)}: output directory {directory} does not exist")
    if os.path.isdir(target):
        raise MediaError(f"{os.fspath(path)}: is a directory, expected an output file path")
    stem, ext = os.path.splitext(os.path.basename(target))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{stem}.{os.getpid()}@{_host()}.", suffix=f"{TEMP_MARKER}{ext}",
                                   dir=directory)
    except OSError as exc:
        raise MediaError(f"{os.fspath(path)}: cannot create a temporary file in {directory}: {exc}") from exc
    os.close(fd)
    try:
        yield tmp
        try:
            mode = os.stat(target).st_mode & 0o7777
        except FileNotFoundError:
            mode = _default_mode()
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
