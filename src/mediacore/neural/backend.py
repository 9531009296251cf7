"""NeuralBackend: the learned noise suppressor run through onnxruntime inside the Denoise stage contract.

Per 10 ms hop and stream: numba analysis (20 ms sqrt-Hann STFT, 40 ERB-like
log band powers of 0-8 kHz, and the 161 log bin powers for a model trained
with them), one onnxruntime call for all streams and all
hops of the call (a GRU whose hidden state is an explicit input/output, so
nothing is re-run over history), numba synthesis (band gains interpolated
to bins, gain floor from ``max_attenuation_db`` and, in frames the model
is sure hold speech, from ``speech_floor_db``; optional zero-phase
high-pass, overlap-add).  Latency 10 ms (window - hop) plus 10 ms per frame
of look-ahead the model was trained with (ONNX metadata ``lookahead_frames``:
its gains for a frame come out one hop later, so the spectra wait for them;
the shipped model has one frame: 20 ms).
48 kHz and 16 kHz
(bins are 50 Hz wide at both rates; the model sees 0-8 kHz and above 8 kHz a
48 kHz stream gets the mean gain of the 6-8 kHz bands).

Register with ``register_backend("neural", NeuralBackend)``.
"""

from __future__ import annotations

import hashlib
import numbers
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from ..dsp import spectral
from ..errors import MediaCoreError, MissingDependencyError, ParameterError
from . import bands, kernels

RATES = (16000, 48000)
MODEL_FILE = "denoise_neural.onnx"
#: sha256 of the shipped model file (checked at load)
MODEL_SHA256 = "57279090382a2ff282bea567d1de81f250e6942da94c01c7669f25852798bea5"
#: frames (10 ms each) over which `bypass` fades the suppression out or in
BYPASS_RAMP_FRAMES = 10
#: ONNX metadata key of the model's look-ahead in frames (written by mediacore.train.model.export_onnx)
LOOKAHEAD_KEY = "lookahead_frames"
#: ONNX metadata keys of a model with a deep filter: how many low bins, how many frames (taps)
DF_BINS_KEY, DF_TAPS_KEY = "df_bins", "df_taps"
#: default ``speech_floor_db``: in a frame whose speech probability is 1, no band is turned down by more
#: than this (see NeuralBackend).  Chosen on the dev set (18-22 dB with sharpness 4-8 all gave OVRL
#: 2.926-2.931 at a 60 dB floor, against 2.888 without); on sets of new speech or new noise it still adds +0.02 OVRL, on the
#: training material it is neutral (benchmarks/cross_sets.py; models/README.md, "Speech floor")
SPEECH_FLOOR_DB = 20.0
#: the speech floor scales with speech_prob ** SPEECH_FLOOR_SHARPNESS, so it acts only where the model is
#: confident: at p = 0.9 it sits 5.5 dB lower, at p = 0.5 36 dB lower, at p = 0.3 below the 80 dB default floor
SPEECH_FLOOR_SHARPNESS = 6


def default_model_path() -> Path:
    return Path(str(files("mediacore") / "_assets" / MODEL_FILE))


def load_session(path: str | Path, sha256: str | None):
    """(onnxruntime session (one thread), sha256) for the model at ``path``, after checking its sha256."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MediaCoreError(f"Denoise: neural model file {path} cannot be read: {exc}") from None
    digest = hashlib.sha256(data).hexdigest()
    if sha256 is not None:
        if digest != sha256:
            raise MediaCoreError(f"Denoise: neural model {path.name} has sha256 {digest}, expected {sha256} "
                                 "(corrupt or replaced file; reinstall mediacore)")
    try:
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise MissingDependencyError("Denoise: backend 'neural' needs onnxruntime: pip install onnxruntime") from exc
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    return ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"]), digest


class NeuralBackend:
    """Learned band-gain suppressor (GRU, ONNX); see the module docstring.

    Options: ``gain_exponent`` (1.0: the model's gains; > 1 suppresses more
    where the model is unsure), ``speech_floor_db`` (20; None turns it off:
    within speech the gains are floored at ``-speech_floor_db`` dB times
    ``speech_prob ** 6``, in the spirit of OM-LSA's presence-weighted floor.
    A model that cuts a band of confident speech by 30-50 dB wherever the
    noise locally dominates leaves holes in the harmonics; holding those
    bands at -20 dB keeps the speech whole and lets the speech mask the
    noise that stays, while pauses keep the full ``max_attenuation_db``),
    ``model_path`` (a model trained with ``python -m mediacore.train``;
    default: the shipped model) and ``model_sha256`` (checked when given; the
    shipped model is always checked).  ``bypass`` (property, runtime): True
    fades the suppression out over 100 ms (and back in when set False) without
    clicks; the latency stays the same.
    """

    def __init__(self, sample_rate: int, max_attenuation_db: float, highpass_hz: float | None, *,
                 model_path: str | None = None, model_sha256: str | None = None,
                 gain_exponent: float = 1.0, pitch_filter: bool = True,
                 speech_floor_db: float | None = SPEECH_FLOOR_DB) -> None:
        if sample_rate not in RATES:
            raise ParameterError(f"Denoise: backend 'neural' expects sample_rate in {RATES}, got {sample_rate} "
                                 "(insert Resample first)")
        self.sample_rate = sample_rate
        self.model_path = model_path
        if not 0.25 <= float(gain_exponent) <= 4.0:
            raise ParameterError(f"Denoise: gain_exponent must be in [0.25, 4], got {gain_exponent}")
        self.gain_exponent = float(gain_exponent)
        if speech_floor_db is not None:
            if (not isinstance(speech_floor_db, numbers.Real) or isinstance(speech_floor_db, bool)
                    or not 0.0 <= speech_floor_db <= 80.0):
                raise ParameterError(f"Denoise: speech_floor_db must be in [0, 80] dB or None, got {speech_floor_db!r}")
            speech_floor_db = float(speech_floor_db)
        self.speech_floor_db = speech_floor_db
        self.speech_floor = 0.0 if speech_floor_db is None else 10.0 ** (-speech_floor_db / 20.0)
        self.pitch_filter = bool(pitch_filter)
        path = default_model_path() if model_path is None else Path(model_path)
        sha = MODEL_SHA256 if model_path is None else model_sha256
        self.session, self.model_sha256 = load_session(path, sha)
        inputs = {i.name: i for i in self.session.get_inputs()}
        self.layers, self.hidden = int(inputs["h_in"].shape[0]), int(inputs["h_in"].shape[2])
        # band powers, or band powers then bin powers (a model trained with --fine-bins 1)
        self.n_features = int(inputs["features"].shape[2])
        if self.n_features not in (bands.N_BANDS, bands.N_BANDS + bands.N_MODEL_BINS):
            raise MediaCoreError(f"Denoise: neural model {path.name} takes {self.n_features} features per frame, "
                                 f"expected {bands.N_BANDS} or {bands.N_BANDS + bands.N_MODEL_BINS}")
        self.hop = self.block_size = sample_rate // 100
        self.win_len = 2 * self.hop
        meta = self.session.get_modelmeta().custom_metadata_map
        self.lookahead = int(meta.get(LOOKAHEAD_KEY, 0))
        # deep filter (optional): complex taps over the last df_taps frames for the df_bins lowest bins
        self.df_bins, self.df_taps = int(meta.get(DF_BINS_KEY, 0)), int(meta.get(DF_TAPS_KEY, 0))
        self.outputs = ["gains", "speech_prob", "h_out"] + (["df"] if self.df_bins else [])
        if self.df_bins and self.df_taps < self.lookahead + 1:
            raise MediaCoreError(f"Denoise: neural model {path.name} has {self.df_taps} deep-filter taps, "
                                 f"expected at least lookahead + 1 = {self.lookahead + 1}")
        self.latency = self.win_len - self.hop + self.lookahead * self.hop
        self.window = spectral.sqrt_hann(self.win_len, 2)
        self.n_bins = self.win_len // 2 + 1
        self.lo, self.w = kernels.sparse_bands(bands.band_matrix())
        freqs = np.arange(self.n_bins) * bands.BIN_HZ
        if highpass_hz:
            self.shaping = 1.0 / np.sqrt(1.0 + (highpass_hz / np.maximum(freqs, 1e-9)) ** 8)
        else:
            self.shaping = np.ones(self.n_bins)
        self.floor = 10.0 ** (-max_attenuation_db / 20.0)
        self._mix_target = 1.0
        # pitch filter: periods 2.5-16 ms (400-62.5 Hz); the input history it needs reaches one window
        # plus the longest period behind the oldest frame being synthesised
        self.pitch_tmin, self.pitch_tmax = sample_rate * 25 // 10000, sample_rate * 16 // 1000
        self.pitch_fft = 1 << int(np.ceil(np.log2(self.win_len + self.pitch_tmax)))
        self.history = -(-(self.win_len + self.pitch_tmax + self.lookahead * self.hop) // self.hop) * self.hop

    def options(self) -> dict[str, Any]:
        opts = {} if self.model_path is None else {"model_path": self.model_path}
        if self.gain_exponent != 1.0:
            opts["gain_exponent"] = self.gain_exponent
        if not self.pitch_filter:
            opts["pitch_filter"] = False
        if self.speech_floor_db != SPEECH_FLOOR_DB:
            opts["speech_floor_db"] = self.speech_floor_db
        return opts

    @property
    def bypass(self) -> bool:
        return self._mix_target == 0.0

    @bypass.setter
    def bypass(self, value: bool) -> None:
        self._mix_target = 0.0 if value else 1.0

    def allocate(self, c: int) -> None:
        self.inbuf = np.zeros((c, self.win_len))
        self.ola = np.zeros((c, self.win_len - self.hop))
        self.h = np.zeros((self.layers, c, self.hidden), np.float32)
        self.spec_wait = np.zeros((c, self.lookahead, self.n_bins), np.complex128)  # spectra awaiting their gains
        self.mix = np.full(c, self._mix_target)
        self.past = np.zeros((c, self.history))  # input history for the pitch filter
        self.df_past = np.zeros((c, max(self.df_taps - 1, 0), self.df_bins), np.complex128)  # deep-filter history

    def process(self, x: np.ndarray, speech_prob: np.ndarray) -> np.ndarray:
        c, n = x.shape
        t = n // self.hop
        out = np.empty_like(x)
        if t == 0:
            return out
        spec = np.empty((c, t, self.n_bins), np.complex128)
        feats = np.empty((c, t, self.n_features), np.float32)
        kernels.analyse(x, self.hop, self.inbuf, self.window, self.lo, self.w, bands.N_BANDS, bands.LOG_EPS,
                        spec, feats)
        gains, prob, self.h, *df = self.session.run(self.outputs, {"features": feats, "h_in": self.h})
        extra = np.zeros((c, t, self.df_bins), np.complex128)
        if self.df_bins:  # before the look-ahead queue: step i's taps end at the newest frame it heard
            frames = np.concatenate([self.df_past, spec[:, :, : self.df_bins]], axis=1)
            kernels.deep_filter(frames, df[0], self.df_taps, extra)
            self.df_past = np.ascontiguousarray(frames[:, t:])
        if self.lookahead:  # gains[t] belong to the spectrum `lookahead` frames before spec[t]
            queue = np.concatenate([self.spec_wait, spec], axis=1)
            spec, self.spec_wait = np.ascontiguousarray(queue[:, :t]), queue[:, t:].copy()
        if self.gain_exponent != 1.0:
            gains = gains ** np.float32(self.gain_exponent)
        if self.speech_floor:  # before the pitch filter, which weighs its comb filter against the gains
            confident = np.asarray(prob, np.float32).reshape(c, t, 1) ** SPEECH_FLOOR_SHARPNESS
            gains = np.maximum(gains, np.float32(self.speech_floor) * confident)
        if self.pitch_filter:
            buf = np.concatenate([self.past, x], axis=1)
            # spec[:, i] is analysis frame i - lookahead, whose window ends lookahead hops before x's frame i
            kernels.pitch_filter(spec, gains, buf, self.history + (1 - self.lookahead) * self.hop, self.hop,
                                 self.window, self.lo, self.w, bands.N_BANDS, self.pitch_tmin, self.pitch_tmax,
                                 self.pitch_fft, 1.0, self.floor, self.mix, self._mix_target,
                                 1.0 / BYPASS_RAMP_FRAMES)
            self.past = np.ascontiguousarray(buf[:, -self.history:])
        kernels.synthesise(spec, gains, extra, self.hop, self.ola, self.window, self.lo, self.w,
                           bands.HIGH_FROM_BANDS, self.floor, self.shaping, self.mix, self._mix_target,
                           1.0 / BYPASS_RAMP_FRAMES, out)
        speech_prob[...] = prob
        return out
