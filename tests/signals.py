"""Test signals: the bundled example (real speech) and synthetic ones, at any rate."""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly


@lru_cache(maxsize=None)
def example(kind: str = "noisy", sample_rate: int = 48000) -> np.ndarray:
    """The bundled 6 s example (``noisy`` or ``clean``) at ``sample_rate``, float32 mono."""
    x, sr = sf.read(str(files("mediacore") / "_assets" / f"example_{kind}.flac"), dtype="float64")
    if sample_rate != sr:
        g = np.gcd(sample_rate, sr)
        x = resample_poly(x, sample_rate // g, sr // g)
    return x.astype(np.float32)


def speech_mask(clean: np.ndarray, block: int, below_peak_db: float = 35.0) -> np.ndarray:
    """Per-sample mask of 10 ms blocks within ``below_peak_db`` of the loudest block."""
    n = len(clean) // block * block
    e = 10 * np.log10(np.mean(clean[:n].reshape(-1, block) ** 2, axis=1) + 1e-12)
    m = np.repeat(e > e.max() - below_peak_db, block)
    return np.concatenate([m, np.zeros(len(clean) - n, bool)])


def level_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.asarray(x, np.float64) ** 2) + 1e-20))


def lag_of(reference: np.ndarray, output: np.ndarray, max_lag: int) -> int:
    """Lag (samples, 0..max_lag) at which ``output`` best matches ``reference`` (output delayed by +lag)."""
    n = len(reference)
    out = np.zeros(n + max_lag)
    m = min(len(output), n + max_lag)
    out[:m] = output[:m]
    size = 1 << int(np.ceil(np.log2(2 * (n + max_lag))))
    xc = np.fft.irfft(np.fft.rfft(out, size) * np.conj(np.fft.rfft(reference, size)), size)
    return int(np.argmax(xc[: max_lag + 1]))
