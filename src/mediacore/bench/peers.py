"""Peer noise suppressors, called exactly as in ``shared/corpus/dev/baseline.md``.

Each peer is a callable ``f(x48) -> y`` on a 1-D float32 signal at 48 kHz
(full scale 1.0).  It processes 10 ms (480-sample) frames, the last one
zero-padded, then three frames of zeros to flush its delay line, so ``y`` is
longer than ``x48`` and still carries the system's delay: the caller
estimates and removes that delay.  Every call starts from a fresh state.

The peer packages are optional: ``pip install 'mediacore[peers]'``.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import os
import sys
from collections.abc import Callable

import numpy as np

from mediacore.errors import FormatError, MissingDependencyError, ParameterError

__all__ = ["SAMPLE_RATE", "FRAME", "FLUSH_FRAMES", "PEERS", "get_peer", "noisy", "webrtc", "rnnoise"]

SAMPLE_RATE = 48000
FRAME = 480          # 10 ms at 48 kHz, the frame size of every peer
FLUSH_FRAMES = 3     # zero frames appended after the clip

_PEERS_EXTRA = "pip install 'mediacore[peers]'"


def _missing(package: str, exc: BaseException | None = None) -> MissingDependencyError:
    err = MissingDependencyError(f"peer needs the optional package {package!r}: {_PEERS_EXTRA}")
    if exc is not None:
        err.__cause__ = exc
    return err


def _frames(x48: np.ndarray) -> np.ndarray:
    """Check the input and cut it into (n_frames, 480) float32 rows, flush frames included."""
    x = np.asarray(x48)
    if x.ndim != 1:
        raise FormatError(f"peer input must be 1-D mono at 48 kHz, got shape {x.shape}")
    if x.size == 0:
        raise FormatError("peer input is empty")
    if not np.all(np.isfinite(x)):
        raise FormatError("peer input contains NaN or Inf")
    n_frames = -(-x.size // FRAME) + FLUSH_FRAMES
    buf = np.zeros(n_frames * FRAME, dtype=np.float32)
    buf[: x.size] = x
    return buf.reshape(n_frames, FRAME)


def noisy(x48: np.ndarray) -> np.ndarray:
    """The input unchanged (the "no processing" reference row)."""
    x = np.asarray(x48)
    if x.ndim != 1:
        raise FormatError(f"peer input must be 1-D mono at 48 kHz, got shape {x.shape}")
    return x.astype(np.float32, copy=True)


def webrtc(x48: np.ndarray) -> np.ndarray:
    """WebRTC NS (pywebrtc-audio ``NoiseSuppressor``, level 2 = "high", up to 18 dB).

    Float32 frames of 480 samples at 48 kHz.
    """
    try:
        from pywebrtc_audio import NoiseSuppressor
    except ImportError as exc:
        raise _missing("pywebrtc-audio", exc) from exc
    frames = _frames(x48)
    ns = NoiseSuppressor(sample_rate=SAMPLE_RATE, level=2)
    out = np.empty_like(frames)
    for i, frame in enumerate(frames):
        out[i] = ns.process(frame)
    return out.reshape(-1)


@functools.lru_cache(maxsize=1)
def _rnnoise_lib() -> ctypes.CDLL:
    """The librnnoise shipped inside pyrnnoise, loaded directly with ctypes.

    Loading the shared library ourselves (rather than importing
    ``pyrnnoise``) avoids the package's audio-file front end and its
    dependencies; only ``rnnoise_create/process_frame/destroy`` are used.
    """
    spec = importlib.util.find_spec("pyrnnoise")
    if spec is None or not spec.submodule_search_locations:
        raise _missing("pyrnnoise")
    name = {"darwin": "librnnoise.dylib", "win32": "rnnoise.dll"}.get(sys.platform, "librnnoise.so")
    path = os.path.join(list(spec.submodule_search_locations)[0], name)
    if not os.path.isfile(path):
        raise MissingDependencyError(f"pyrnnoise is installed but has no {name} ({path}): {_PEERS_EXTRA}")
    lib = ctypes.CDLL(path)
    lib.rnnoise_create.argtypes = [ctypes.c_void_p]
    lib.rnnoise_create.restype = ctypes.c_void_p
    lib.rnnoise_destroy.argtypes = [ctypes.c_void_p]
    lib.rnnoise_destroy.restype = None
    lib.rnnoise_get_frame_size.argtypes = []
    lib.rnnoise_get_frame_size.restype = ctypes.c_int
    lib.rnnoise_process_frame.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float),
                                          ctypes.POINTER(ctypes.c_float)]
    lib.rnnoise_process_frame.restype = ctypes.c_float
    if lib.rnnoise_get_frame_size() != FRAME:
        raise FormatError(f"librnnoise frame size is {lib.rnnoise_get_frame_size()}, expected {FRAME}")
    return lib


def rnnoise(x48: np.ndarray) -> np.ndarray:
    """RNNoise (the librnnoise inside pyrnnoise, built-in model).

    ``rnnoise_process_frame`` on 480-sample float32 frames at int16 scale
    (the library expects +-32768 full scale; samples are not quantised).
    """
    lib = _rnnoise_lib()
    # Scale once for the whole signal; a contiguous float32 copy we may overwrite.
    frames = np.ascontiguousarray(_frames(x48) * np.float32(32768.0))
    fptr = ctypes.POINTER(ctypes.c_float)
    state = lib.rnnoise_create(None)
    if not state:
        raise MemoryError("rnnoise_create failed")
    try:
        for frame in frames:
            p = frame.ctypes.data_as(fptr)
            lib.rnnoise_process_frame(state, p, p)  # in place, as the library allows
    finally:
        lib.rnnoise_destroy(state)
    return frames.reshape(-1) / np.float32(32768.0)


#: Peer name -> callable.
PEERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "noisy": noisy,
    "webrtc": webrtc,
    "rnnoise": rnnoise,
}


def get_peer(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """Look up a peer by name (``noisy``, ``webrtc``, ``rnnoise``)."""
    try:
        return PEERS[name]
    except KeyError:
        raise ParameterError(f"unknown peer {name!r}; known: {', '.join(PEERS)}") from None
