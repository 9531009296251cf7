"""Atomic file output: write to a hidden temporary file next to the target,
then ``os.replace`` it into place; on any failure (including
KeyboardInterrupt) the temporary file is removed and the target is untouched."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from mediacore.errors import MediaError

TEMP_MARKER = ".part"


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

    The temporary name is ``.<stem>.<random>.part<ext>`` so the extension (and
    with it FFmpeg's format guess) is preserved.  The final file gets the
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
        fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=f"{TEMP_MARKER}{ext}", dir=directory)
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
