"""Exception hierarchy.

Every error is a :class:`MediaCoreError` and also a builtin (``ValueError``,
``TypeError``, ...), so callers can catch either.  Messages name the stage or
file and give the expected and the actual value.
"""

from __future__ import annotations


class MediaCoreError(Exception):
    """Base class of all mediacore errors."""


class ParameterError(MediaCoreError, ValueError):
    """A constructor argument is out of range or of the wrong kind."""


class FormatError(MediaCoreError, ValueError):
    """Audio of the wrong sample rate, channel count, shape or content (NaN/Inf, empty)."""


class SampleTypeError(MediaCoreError, TypeError):
    """Samples of a dtype the library does not accept."""


class MediaError(MediaCoreError, OSError):
    """A media file is missing, unreadable, corrupt, truncated or has no audio stream."""


class MissingDependencyError(MediaCoreError, ImportError):
    """An optional package is needed; the message names the extra to install."""


class Terminated(KeyboardInterrupt):
    """The process got SIGTERM.  Raised by the command line's (and batch workers')
    handler so that everything cleans up as for Ctrl-C (temporary files are
    removed); a KeyboardInterrupt, so ``except KeyboardInterrupt`` covers both."""
