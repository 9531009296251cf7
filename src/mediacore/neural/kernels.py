"""Numba kernels of the neural backend: analysis (STFT + log band powers) and synthesis (gains + OLA).

Same framework as :mod:`mediacore.dsp.spectral`: sqrt-Hann window of 20 ms,
10 ms hop, latency = window - hop.  Every stream (channel) has its own
analysis buffer ``inbuf`` (window) and overlap-add tail ``ola`` (window - hop).
The model bands are stored sparsely: bin ``k`` (< n_model_bins) lies between
band ``lo[k]`` (weight ``w[k]``) and band ``lo[k] + 1`` (weight ``1 - w[k]``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..dsp.stft import overlap_add, slide_window


def sparse_bands(band_matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lo, w) per bin from the partition-of-unity triangular matrix (bands, bins)."""
    n_bands, n_bins = band_matrix.shape
    lo = np.empty(n_bins, np.int64)
    w = np.empty(n_bins)
    for k in range(n_bins):
        nz = np.flatnonzero(band_matrix[:, k])
        b = int(nz[0])
        if b == n_bands - 1:
            b, weight = n_bands - 2, 0.0
        else:
            weight = band_matrix[b, k]
        lo[k], w[k] = b, weight
        if not math.isclose(band_matrix[b, k] + band_matrix[b + 1, k], 1.0) or nz.size > 2:
            raise ValueError("band matrix is not a two-neighbour partition of unity")
    return lo, w


@njit(cache=True, nogil=True)
def analyse(x, hop, inbuf, window, lo, w, n_bands, log_eps, spec, feats):
    """x (channels, T*hop) -> spec (channels, T, bins) complex, feats (channels, T, features) float32 log powers.

    Features: the ``n_bands`` band powers, then (when ``feats`` has room for them) the model bins' powers.
    """
    n_ch, n = x.shape
    win_len = window.shape[0]
    n_model = lo.shape[0]
    scale = 1.0 / win_len
    frame = np.empty(win_len)
    energy = np.empty(n_bands)
    for c in range(n_ch):
        for t in range(n // hop):
            slide_window(inbuf, c, x, t * hop, hop, window, scale, frame)
            s = np.fft.rfft(frame)
            spec[c, t, :] = s
            for b in range(n_bands):
                energy[b] = 0.0
            for k in range(n_model):
                p = s[k].real * s[k].real + s[k].imag * s[k].imag
                energy[lo[k]] += w[k] * p
                energy[lo[k] + 1] += (1.0 - w[k]) * p
            for b in range(n_bands):
                feats[c, t, b] = math.log(energy[b] + log_eps)
            if feats.shape[2] > n_bands:
                for k in range(n_model):
                    feats[c, t, n_bands + k] = math.log(s[k].real * s[k].real + s[k].imag * s[k].imag + log_eps)


@njit(cache=True, nogil=True)
def synthesise(spec, gains, hop, ola, window, lo, w, high_from, floor, shaping, mix, mix_target, mix_step, out):
    """Apply band gains (channels, T, bands) to ``spec``, inverse FFT, overlap-add into ``out`` (channels, T*hop).

    Bin gains: interpolated band gains below 8 kHz; above, the mean of the last
    ``high_from`` band gains; never below ``floor``; times ``shaping``.
    ``mix`` (channels) ramps toward ``mix_target`` by ``mix_step`` per frame:
    the applied gain is ``1 - mix * (1 - g)`` (a click-free bypass at 0).
    """
    n_ch, n_frames, n_bins = spec.shape
    n_bands = gains.shape[2]
    win_len = window.shape[0]
    n_model = lo.shape[0]
    s = np.empty(n_bins, np.complex128)
    for c in range(n_ch):
        for t in range(n_frames):
            m = mix[c]
            if m < mix_target:
                m = min(m + mix_step, mix_target)
            elif m > mix_target:
                m = max(m - mix_step, mix_target)
            mix[c] = m
            for k in range(n_model):
                g = w[k] * gains[c, t, lo[k]] + (1.0 - w[k]) * gains[c, t, lo[k] + 1]
                g = 1.0 - m * (1.0 - max(g, floor))
                s[k] = spec[c, t, k] * (g * shaping[k] * win_len)
            if n_bins > n_model:
                gh = 0.0
                for b in range(n_bands - high_from, n_bands):
                    gh += gains[c, t, b]
                gh = 1.0 - m * (1.0 - max(gh / high_from, floor))
                for k in range(n_model, n_bins):
                    s[k] = spec[c, t, k] * (gh * shaping[k] * win_len)
            overlap_add(np.fft.irfft(s, win_len), window, ola, c, out, t * hop, hop)
