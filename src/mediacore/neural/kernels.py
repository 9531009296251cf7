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
def synthesise(spec, gains, extra, hop, ola, window, lo, w, high_from, floor, shaping, mix, mix_target, mix_step,
               out):
    """Apply band gains (channels, T, bands) to ``spec``, inverse FFT, overlap-add into ``out`` (channels, T*hop).

    Bin gains: interpolated band gains below 8 kHz; above, the mean of the last
    ``high_from`` band gains; never below ``floor``; times ``shaping``.
    ``extra`` (channels, T, K): the deep filter's term, added to the lowest K bins.
    ``mix`` (channels) ramps toward ``mix_target`` by ``mix_step`` per frame:
    the applied gain is ``1 - mix * (1 - g)`` and the added term ``mix * extra`` (a click-free bypass at 0).
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
            for k in range(extra.shape[2]):
                s[k] += extra[c, t, k] * (m * shaping[k] * win_len)
            if n_bins > n_model:
                gh = 0.0
                for b in range(n_bands - high_from, n_bands):
                    gh += gains[c, t, b]
                gh = 1.0 - m * (1.0 - max(gh / high_from, floor))
                for k in range(n_model, n_bins):
                    s[k] = spec[c, t, k] * (gh * shaping[k] * win_len)
            overlap_add(np.fft.irfft(s, win_len), window, ola, c, out, t * hop, hop)


@njit(cache=True, nogil=True)
def deep_filter(frames, coefs, taps, extra):
    """The deep filter's term: ``extra[c, t, k] = sum_j (coefs[c, t, (k*taps + j)*2] + i coefs[.. + 1])
    * frames[c, t + j, k]``: complex taps over the analysis spectra of the ``taps`` frames ending at the
    newest frame step t has heard (``frames`` (channels, taps - 1 + T, K): the taps - 1 before the block,
    then the block's own)."""
    n_ch, n_frames, n_bins = extra.shape
    for c in range(n_ch):
        for t in range(n_frames):
            for k in range(n_bins):
                acc = 0j
                for j in range(taps):
                    i = (k * taps + j) * 2
                    acc += complex(coefs[c, t, i], coefs[c, t, i + 1]) * frames[c, t + j, k]
                extra[c, t, k] = acc


@njit(cache=True, nogil=True)
def _pitch_lag(buf, end, win_len, tmin, tmax, n_fft):
    """Pitch period (samples) of the window ending at ``end``: the lag in [tmin, tmax] whose past
    window correlates best with it (normalised), all lags at once by FFT cross-correlation."""
    span = win_len + tmax
    a = np.zeros(n_fft)
    seg = np.zeros(n_fft)
    for j in range(span):
        a[j] = buf[end - span + j]
    for j in range(win_len):
        seg[j] = a[tmax + j]
    cc = np.fft.irfft(np.fft.rfft(a) * np.conj(np.fft.rfft(seg)), n_fft)  # cc[d] = sum_j a[j + d] seg[j]
    e_seg = 0.0
    for j in range(win_len):
        e_seg += seg[j] * seg[j]
    e = 0.0  # energy of a[d : d + win_len], slid from d = tmax - tmin down to d = 0
    d0 = tmax - tmin
    for j in range(d0, d0 + win_len):
        e += a[j] * a[j]
    best, best_lag = -2.0, tmin
    for d in range(d0, -1, -1):
        if d < d0:
            e += a[d] * a[d] - a[d + win_len] * a[d + win_len]
        score = cc[d] / math.sqrt(max(e, 0.0) * e_seg + 1e-20)
        if score > best:
            best, best_lag = score, tmax - d
    return best_lag


@njit(cache=True, nogil=True)
def pitch_filter(spec, gains, buf, first_end, hop, window, lo, w, n_bands, tmin, tmax, n_fft, strength, floor,
                 mix, mix_target, mix_step):
    """Comb-filter each model-band spectrum toward the same window one pitch period earlier, in place
    (RNNoise's pitch filter): band gains average over harmonics and the noise between them; adding
    the periodic part back, as far as the band's pitch correlation says speech is there beyond its
    gain, and restoring the band's energy, keeps the harmonics and lowers what lies between them.

    spec (channels, T, bins): the spectra about to be synthesised, with their band ``gains``;
    buf (channels, N): the input signal, frame t ending at ``first_end + t * hop``.  The strength
    follows the bypass ramp of :func:`synthesise` (same ``mix`` arithmetic), so a bypassed stream is
    untouched.
    """
    n_ch, n_frames, n_bins = spec.shape
    win_len = window.shape[0]
    n_model = lo.shape[0]
    scale = 1.0 / win_len
    frame = np.empty(win_len)
    ex, ep, exp_, ey, r = np.empty(n_bands), np.empty(n_bands), np.empty(n_bands), np.empty(n_bands), np.empty(n_bands)
    for c in range(n_ch):
        m = mix[c]
        for t in range(n_frames):
            if m < mix_target:
                m = min(m + mix_step, mix_target)
            elif m > mix_target:
                m = max(m - mix_step, mix_target)
            s_t = strength * m
            if s_t <= 0.0:
                continue
            end = first_end + t * hop
            lag = _pitch_lag(buf[c], end, win_len, tmin, tmax, n_fft)
            for j in range(win_len):
                frame[j] = buf[c, end - win_len - lag + j] * window[j] * scale
            p = np.fft.rfft(frame)
            for b in range(n_bands):
                ex[b] = 0.0
                ep[b] = 0.0
                exp_[b] = 0.0
                ey[b] = 0.0
            for k in range(n_model):
                x = spec[c, t, k]
                a, bb = w[k], 1.0 - w[k]
                px = x.real * x.real + x.imag * x.imag
                pp = p[k].real * p[k].real + p[k].imag * p[k].imag
                xp = x.real * p[k].real + x.imag * p[k].imag
                ex[lo[k]] += a * px
                ex[lo[k] + 1] += bb * px
                ep[lo[k]] += a * pp
                ep[lo[k] + 1] += bb * pp
                exp_[lo[k]] += a * xp
                exp_[lo[k] + 1] += bb * xp
            for b in range(n_bands):
                corr = min(max(exp_[b] / math.sqrt(ex[b] * ep[b] + 1e-20), 0.0), 1.0)
                g = max(float(gains[c, t, b]), floor)
                if corr > g:
                    rb = 1.0
                else:
                    rb = corr * corr * (1.0 - g * g) / (1e-3 + g * g * (1.0 - corr * corr))
                r[b] = math.sqrt(min(max(rb, 0.0), 1.0)) * math.sqrt(ex[b] / (ep[b] + 1e-20)) * s_t
            for k in range(n_model):
                y = spec[c, t, k] + (w[k] * r[lo[k]] + (1.0 - w[k]) * r[lo[k] + 1]) * p[k]
                spec[c, t, k] = y
                py = y.real * y.real + y.imag * y.imag
                ey[lo[k]] += w[k] * py
                ey[lo[k] + 1] += (1.0 - w[k]) * py
            for b in range(n_bands):
                ey[b] = math.sqrt(ex[b] / (ey[b] + 1e-20))
            for k in range(n_model):
                spec[c, t, k] *= w[k] * ey[lo[k]] + (1.0 - w[k]) * ey[lo[k] + 1]
