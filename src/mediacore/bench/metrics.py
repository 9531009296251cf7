"""Noise-suppression quality metrics.

Pure functions on 1-D float arrays.  The intrusive and learned metrics come
from optional packages (``pesq``, ``pystoi``, ``speechmos``), imported on first
use; install them with ``pip install 'mediacore[bench]'``.

The method follows ``shared/corpus/dev/baseline.md``: outputs are delay
compensated at 48 kHz, then both signals are resampled to 16 kHz with a
Kaiser-windowed polyphase filter and scored there.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import signal

from mediacore.errors import FormatError, MissingDependencyError, ParameterError

if TYPE_CHECKING:
    from mediacore.bench.corpus import Clip

__all__ = [
    "METRIC_SR",
    "to_16k",
    "resample",
    "estimate_delay",
    "align",
    "pesq_wb",
    "pesq_nb",
    "stoi",
    "estoi",
    "si_sdr",
    "dnsmos",
    "set_num_threads",
    "level_dbfs",
    "score_clip",
    "score_signals",
]

#: Rate at which every metric is computed.
METRIC_SR = 16000

# Power floor of level_dbfs: an all-zero output reads -150 dBFS instead of -inf,
# so that means over clips stay finite.
_POWER_FLOOR = 1e-15

_BENCH_EXTRA = "pip install 'mediacore[bench]'"


def _require(module: str, what: str) -> Any:
    """Import an optional bench dependency or raise MissingDependencyError."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{what} needs the optional package {module.split('.')[0]!r}: {_BENCH_EXTRA}"
        ) from exc


def _as_1d(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 1:
        raise FormatError(f"{name} must be 1-D, got shape {x.shape}")
    if x.size == 0:
        raise FormatError(f"{name} is empty")
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise FormatError(f"{name} contains NaN or Inf")
    return x


def _same_length(ref: np.ndarray, deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref = _as_1d(ref, "reference")
    deg = _as_1d(deg, "degraded signal")
    if ref.shape != deg.shape:
        raise FormatError(f"reference and degraded signal differ in length: {ref.size} vs {deg.size}")
    return ref, deg


# --------------------------------------------------------------------------- resampling, delay


@functools.lru_cache(maxsize=8)
def _kaiser_fir(up: int, down: int) -> np.ndarray:
    """Anti-aliasing FIR for ``resample_poly(x, up, down)``.

    Kaiser window, beta 8 (about 80 dB stop band), 40 taps per phase either
    side, cut-off at 0.94 of the lower Nyquist frequency.  This is the filter
    the corpus was built with; scipy's default (10 taps per phase, cut-off at
    Nyquist) leaks aliases into the top band and moves DNSMOS by ~0.02.
    """
    m = max(up, down)
    return signal.firwin(2 * 40 * m + 1, 0.94 / m, window=("kaiser", 8.0))


def to_16k(x: np.ndarray, sr: int) -> np.ndarray:
    """Resample to 16 kHz with a Kaiser-windowed (beta 8) polyphase FIR.

    :func:`scipy.signal.resample_poly` with the long filter of
    :func:`_kaiser_fir`, as in baseline.md.  Returns float64.
    """
    return resample(x, sr, METRIC_SR)


def resample(x: np.ndarray, sr: int, target: int) -> np.ndarray:
    """Resample from ``sr`` to ``target`` Hz with the Kaiser (beta 8) polyphase FIR of :func:`to_16k`.

    Returns float64 (a copy when the rates are equal).
    """
    x = _as_1d(x, "signal").astype(np.float64, copy=False)
    sr, target = int(sr), int(target)
    if sr <= 0 or target <= 0:
        raise ParameterError(f"sample rates must be positive, got {sr} -> {target}")
    if sr == target:
        return x.copy()
    g = math.gcd(sr, target)
    up, down = target // g, sr // g
    return signal.resample_poly(x, up, down, window=_kaiser_fir(up, down))


def estimate_delay(ref: np.ndarray, out: np.ndarray, sr: int, max_ms: float = 100.0) -> int:
    """Lag of ``out`` behind ``ref`` in samples, by FFT cross-correlation.

    Parameters
    ----------
    ref, out : ndarray
        Reference and system output at the same rate; lengths may differ.
    sr : int
        Sample rate, only used to turn ``max_ms`` into samples.
    max_ms : float
        Search range is +-max_ms.

    Returns
    -------
    int
        ``d`` such that ``out[n + d]`` best matches ``ref[n]`` (positive when
        the output is late).  0 when either signal is silent.
    """
    ref = _as_1d(ref, "reference").astype(np.float64, copy=False)
    out = _as_1d(out, "output").astype(np.float64, copy=False)
    if max_ms < 0:
        raise ParameterError(f"max_ms must be >= 0, got {max_ms}")
    max_lag = int(round(max_ms * 1e-3 * sr))
    xc = signal.correlate(out, ref, mode="full", method="fft")
    lags = signal.correlation_lags(out.size, ref.size, mode="full")
    keep = np.abs(lags) <= max_lag
    xc, lags = xc[keep], lags[keep]
    if not np.any(xc != 0.0):
        return 0
    # Signed maximum, not |xc|: none of the systems inverts polarity, and a
    # negative peak is usually a pitch-period side lobe.
    return int(lags[int(np.argmax(xc))])


def align(out: np.ndarray, delay: int, n: int) -> np.ndarray:
    """Advance ``out`` by ``delay`` samples and cut or zero-pad it to ``n``.

    A negative delay (output early) inserts zeros at the start.
    """
    out = np.asarray(out)
    if out.ndim != 1:
        raise FormatError(f"output must be 1-D, got shape {out.shape}")
    if n < 0:
        raise ParameterError(f"length must be >= 0, got {n}")
    delay = int(delay)
    y = np.zeros(n, dtype=out.dtype if np.issubdtype(out.dtype, np.floating) else np.float64)
    if delay >= 0:
        seg = out[delay:delay + n]
        y[:seg.size] = seg
    else:
        seg = out[: max(n + delay, 0)]
        y[-delay:-delay + seg.size] = seg
    return y


# --------------------------------------------------------------------------- intrusive metrics


def _pesq(ref: np.ndarray, deg: np.ndarray, sr: int, mode: str) -> float:
    ref, deg = _same_length(ref, deg)
    pesq_mod = _require("pesq", "PESQ")
    if not np.any(deg) or not np.any(ref):
        return float("nan")  # PESQ is undefined without an utterance
    try:
        return float(pesq_mod.pesq(int(sr), ref, deg, mode))
    except pesq_mod.NoUtterancesError:
        return float("nan")


def pesq_wb(ref: np.ndarray, deg: np.ndarray, sr: int = METRIC_SR) -> float:
    """Wide-band PESQ (ITU-T P.862.2, MOS-LQO) at 16 kHz; NaN when no utterance is found."""
    if sr != 16000:
        raise ParameterError(f"PESQ-WB needs 16000 Hz, got {sr}")
    return _pesq(ref, deg, sr, "wb")


def pesq_nb(ref: np.ndarray, deg: np.ndarray, sr: int = METRIC_SR) -> float:
    """Narrow-band PESQ (ITU-T P.862 + P.862.1 mapping) at 8 or 16 kHz; NaN without an utterance."""
    if sr not in (8000, 16000):
        raise ParameterError(f"PESQ-NB needs 8000 or 16000 Hz, got {sr}")
    return _pesq(ref, deg, sr, "nb")


def _stoi(ref: np.ndarray, deg: np.ndarray, sr: int, extended: bool) -> float:
    ref, deg = _same_length(ref, deg)
    pystoi = _require("pystoi", "STOI")
    return float(pystoi.stoi(ref, deg, int(sr), extended=extended))


def stoi(ref: np.ndarray, deg: np.ndarray, sr: int = METRIC_SR) -> float:
    """Short-time objective intelligibility (pystoi), 0..1."""
    return _stoi(ref, deg, sr, extended=False)


def estoi(ref: np.ndarray, deg: np.ndarray, sr: int = METRIC_SR) -> float:
    """Extended STOI (pystoi, ``extended=True``)."""
    return _stoi(ref, deg, sr, extended=True)


def si_sdr(ref: np.ndarray, est: np.ndarray) -> float:
    """Scale-invariant signal-to-distortion ratio in dB (both signals made zero-mean)."""
    ref, est = _same_length(ref, est)
    ref = ref.astype(np.float64) - ref.mean()
    est = est.astype(np.float64) - est.mean()
    ref_energy = float(np.dot(ref, ref))
    if ref_energy == 0.0:
        raise FormatError("SI-SDR needs a non-silent reference")
    target = (np.dot(est, ref) / ref_energy) * ref
    residual = est - target
    tiny = np.finfo(np.float64).tiny  # keeps an exact match finite (a few hundred dB)
    return float(10.0 * np.log10((np.dot(target, target) + tiny) / (np.dot(residual, residual) + tiny)))


def level_dbfs(x: np.ndarray) -> float:
    """Mean level in dBFS: ``10 log10(mean(x**2))``, full scale 1.0 (floor -150 dBFS)."""
    x = _as_1d(x, "signal").astype(np.float64, copy=False)
    return float(10.0 * np.log10(max(float(np.mean(x * x)), _POWER_FLOOR)))


# --------------------------------------------------------------------------- DNSMOS

_dnsmos_model = None
_dnsmos_threads = 0  # 0: onnxruntime's default


def set_num_threads(n: int) -> None:
    """Threads for the DNSMOS ONNX sessions (0 = onnxruntime default); call before first use."""
    global _dnsmos_threads, _dnsmos_model
    if n < 0:
        raise ParameterError(f"thread count must be >= 0, got {n}")
    if n != _dnsmos_threads:
        _dnsmos_threads = int(n)
        _dnsmos_model = None


def _dnsmos_scorer():
    """speechmos' DNSMOS scorer with its official models and our thread setting."""
    global _dnsmos_model
    if _dnsmos_model is not None:
        return _dnsmos_model
    sm = _require("speechmos.dnsmos", "DNSMOS")
    ort = _require("onnxruntime", "DNSMOS")
    import os

    model_dir = os.path.dirname(os.path.abspath(sm.__file__))
    primary = os.path.join(model_dir, "dnsmos_models", "sig_bak_ovr.onnx")
    p808 = os.path.join(model_dir, "dnsmos_models", "model_v8.onnx")

    class _Scorer(sm.DNSMOS):
        # speechmos' windowing (9.01 s, 1 s hop, short clips repeated), P.808
        # mel features and polynomial mapping, with sessions whose thread count
        # we choose (its own use all cores, which oversubscribes with --jobs).
        def __init__(self) -> None:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = _dnsmos_threads
            opts.inter_op_num_threads = 1
            providers = ["CPUExecutionProvider"]
            self.primary_model_path = primary
            self.onnx_sess = ort.InferenceSession(primary, opts, providers=providers)
            self.p808_onnx_sess = ort.InferenceSession(p808, opts, providers=providers)

    _dnsmos_model = _Scorer()
    return _dnsmos_model


def dnsmos(x16: np.ndarray) -> dict[str, float]:
    """DNSMOS P.835 (SIG, BAK, OVRL) and P.808 MOS of a 16 kHz signal.

    speechmos' official ONNX models on 9.01 s windows with a 1 s hop, clips
    shorter than 9.01 s repeated, scores averaged over windows.  Samples are
    clipped to [-1, 1] (the scorer refuses values outside).
    """
    x = _as_1d(x16, "signal").astype(np.float32)
    x = np.clip(x, -1.0, 1.0)
    if not np.any(x):
        # A silent window has no dB-scaled mel spectrum (log of 0); report NaN.
        return {"SIG": float("nan"), "BAK": float("nan"), "OVRL": float("nan"), "P808": float("nan")}
    r = _dnsmos_scorer()(x, METRIC_SR, False)
    return {"SIG": float(r["sig_mos"]), "BAK": float(r["bak_mos"]),
            "OVRL": float(r["ovrl_mos"]), "P808": float(r["p808_mos"])}


# --------------------------------------------------------------------------- per clip


def score_clip(clip: "Clip", output_48k: np.ndarray, delay: int, sr: int = 48000) -> dict[str, float]:
    """Score one system output against its clip.

    The output is shifted by ``delay`` and cut/zero-padded to the input
    length, then scored by :func:`score_signals` according to the clip kind.
    The clip's files must be at ``sr``.
    """
    x, sr_in = clip.load_noisy()
    if sr_in != sr:
        raise FormatError(f"clip {clip.id}: input is {sr_in} Hz, expected {sr} Hz")
    out = np.asarray(output_48k)
    if out.ndim != 1:
        raise FormatError(f"clip {clip.id}: output must be 1-D, got shape {out.shape}")
    y = align(out.astype(np.float64), delay, x.size)
    ref = None
    if clip.has_speech:
        ref, sr_ref = clip.load_clean()
        if sr_ref != sr or ref.size != x.size:
            raise FormatError(f"clip {clip.id}: clean reference ({ref.size} samples at {sr_ref} Hz) "
                              f"does not match the input ({x.size} at {sr} Hz)")
    return score_signals(clip.kind, x, ref, y, sr)


def score_signals(kind: str, x: np.ndarray, ref: np.ndarray | None, y: np.ndarray,
                  sr: int = 48000) -> dict[str, float]:
    """Score an aligned output ``y`` (same length as the input ``x``), by clip kind:

    - ``noisy``: ``pesq_wb, pesq_nb, stoi, estoi, si_sdr`` against the clean
      reference ``ref`` and ``SIG, BAK, OVRL, P808`` (DNSMOS), all at 16 kHz;
    - ``clean-only``: ``pesq_wb`` against the clean input and DNSMOS ``OVRL``;
    - ``noise-only``: ``out_dbfs`` (output mean level) and ``atten_db``
      (input level minus output level), both full band at ``sr``;
    - ``unreferenced`` (no clean reference): DNSMOS ``SIG, BAK, OVRL, P808``.
    """
    x = _as_1d(x, "input")
    y = _as_1d(y, "output")
    if y.size != x.size:
        raise FormatError(f"aligned output has {y.size} samples, input {x.size}")
    if kind == "noise-only":
        # Full band at the system rate: residual noise or artefacts above 8 kHz
        # are audible, so they must count here (speech metrics ignore that band).
        in_db = level_dbfs(x)
        out_db = level_dbfs(y)
        return {"out_dbfs": out_db, "atten_db": in_db - out_db}

    y16 = to_16k(y, sr)
    if kind == "unreferenced":
        return dnsmos(y16)
    if ref is None:
        raise FormatError(f"a {kind} clip needs a clean reference")
    ref = _as_1d(ref, "reference")
    if ref.size != x.size:
        raise FormatError(f"clean reference has {ref.size} samples, input {x.size}")
    ref16 = to_16k(ref, sr)
    if kind == "clean-only":
        return {"pesq_wb": pesq_wb(ref16, y16), "OVRL": dnsmos(y16)["OVRL"]}
    if kind != "noisy":
        raise FormatError(f"unknown clip kind {kind!r}")

    res = {
        "pesq_wb": pesq_wb(ref16, y16),
        "pesq_nb": pesq_nb(ref16, y16),
        "stoi": stoi(ref16, y16),
        "estoi": estoi(ref16, y16),
        "si_sdr": si_sdr(ref16, y16),
    }
    res.update(dnsmos(y16))
    return res
