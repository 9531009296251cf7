"""Band layout and feature conventions shared by the runtime and the training recipe.

The neural backend analyses 20 ms sqrt-Hann frames at a 10 ms hop (the
framework of :mod:`mediacore.dsp.spectral`).  At 48 kHz and at 16 kHz a bin
is 50 Hz wide, so bins 0..160 (0-8 kHz) mean the same frequencies at both
rates: the model sees only that range and one model serves both rates (it is
trained at 16 kHz).  Spectra are divided by the window length, which makes
per-bin powers the same at both rates for the same acoustic signal.

Bands: triangular filters whose centres follow the ERB-rate scale with at
least one bin between centres (the lowest bands are single bins).  The
triangles form a partition of unity over the bins, so band gains are
interpolated back to bins with the same weights (as in RNNoise).
"""

from __future__ import annotations

import functools

import numpy as np

#: bin width in Hz (20 ms window) at every supported rate
BIN_HZ = 50.0
#: bins the model sees: 0 .. 8 kHz inclusive
N_MODEL_BINS = 161
#: number of model bands
N_BANDS = 40
#: added to band powers before the log (about -100 dB re full scale)
LOG_EPS = 1e-10
#: the bands whose gains drive the coarse gain above 8 kHz (48 kHz streams)
HIGH_FROM_BANDS = 4


def _erb_rate(f_hz):
    return 21.4 * np.log10(1.0 + 0.00437 * np.asarray(f_hz, dtype=np.float64))


def _inv_erb_rate(e):
    return (10.0 ** (np.asarray(e, dtype=np.float64) / 21.4) - 1.0) / 0.00437


@functools.lru_cache(maxsize=None)
def band_centres(n_bands: int = N_BANDS, n_bins: int = N_MODEL_BINS) -> np.ndarray:
    """Integer bin index of each band centre: 0 .. n_bins-1, ERB-spaced, >= 1 bin apart."""
    top = n_bins - 1
    # Find the ERB spacing that, with the 1-bin minimum step, yields exactly n_bands centres.
    lo, hi = 1e-3, _erb_rate(top * BIN_HZ)
    for _ in range(100):
        step = 0.5 * (lo + hi)
        c = _centres_for_step(step, top)
        if len(c) > n_bands:
            lo = step
        else:
            hi = step
    c = _centres_for_step(hi, top)
    if len(c) != n_bands:  # pragma: no cover - construction guard
        raise RuntimeError(f"band layout: got {len(c)} bands, wanted {n_bands}")
    return c


def _centres_for_step(step: float, top: int) -> np.ndarray:
    centres = [0]
    while True:
        nxt_hz = _inv_erb_rate(_erb_rate(centres[-1] * BIN_HZ) + step)
        nxt = max(int(round(nxt_hz / BIN_HZ)), centres[-1] + 1)
        if nxt >= top:
            break
        centres.append(nxt)
    if top - centres[-1] < 0.5 * (centres[-1] - centres[-2]):
        centres[-1] = top
    else:
        centres.append(top)
    return np.array(centres, dtype=np.int64)


@functools.lru_cache(maxsize=None)
def band_matrix(n_bands: int = N_BANDS, n_bins: int = N_MODEL_BINS) -> np.ndarray:
    """(n_bands, n_bins) triangular weights; every column sums to 1."""
    c = band_centres(n_bands, n_bins)
    w = np.zeros((n_bands, n_bins))
    k = np.arange(n_bins)
    for b in range(n_bands):
        if b > 0:
            left = c[b - 1]
            m = (k >= left) & (k <= c[b])
            w[b, m] = (k[m] - left) / (c[b] - left)
        else:
            w[b, k <= c[b]] = 1.0
        if b < n_bands - 1:
            right = c[b + 1]
            m = (k > c[b]) & (k <= right)
            w[b, m] = (right - k[m]) / (right - c[b])
        else:
            w[b, k >= c[b]] = 1.0
    return w
