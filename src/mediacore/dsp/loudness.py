"""ITU-R BS.1770-4 loudness: K-weighting, gated integration, 4x true peak,
and a true-peak look-ahead limiter.

Pure functions and numba kernels; state is passed in and out (the stage in
:mod:`mediacore.stages.loudness` owns it).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

#: BS.1770 block length and hop (400 ms blocks with 75 % overlap)
BLOCK_S = 0.4
HOP_S = 0.1
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
#: the -0.691 dB offset that makes a 997 Hz sine read its RMS level in dB
OFFSET_DB = -0.691

#: true-peak oversampling (BS.1770-4 Annex 2: 4x, 12 taps per phase)
OVERSAMPLE = 4
TAPS_PER_PHASE = 12
#: delay (input samples) of the interpolator: half its span
TP_DELAY = TAPS_PER_PHASE // 2


def k_weighting_sos(sample_rate: int) -> np.ndarray:
    """K-weighting as two biquads (high shelf, then RLB high-pass), shape (2, 6).

    The analogue prototypes of BS.1770 mapped to ``sample_rate`` by the
    bilinear transform; at 48 kHz these are the coefficients printed in the
    recommendation (to 1e-8)."""
    fs = float(sample_rate)
    # stage 1: high shelf (+4 dB above ~1.7 kHz, the head's acoustic effect)
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / fs)
    vh = 10.0 ** (gain_db / 20.0)
    vb = vh ** 0.4996667741545416
    a0 = 1.0 + k / q + k * k
    shelf = [(vh + vb * k / q + k * k) / a0, 2.0 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0,
             1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0]
    # stage 2: RLB high-pass (~38 Hz)
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / fs)
    a0 = 1.0 + k / q + k * k
    hp = [1.0, -2.0, 1.0, 1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0]
    return np.array([shelf, hp], dtype=np.float64)


def channel_weights(num_channels: int) -> np.ndarray:
    """BS.1770 channel weights: 1.0, and 1.41 for the surrounds of 5.1 (LFE
    left out) in FFmpeg's 5.1 order (L R C LFE Ls Rs)."""
    if num_channels == 6:
        return np.array([1.0, 1.0, 1.0, 0.0, 1.41, 1.41])
    return np.ones(num_channels)


def true_peak_taps() -> np.ndarray:
    """Interpolation filter of the 4x true-peak meter, shape (OVERSAMPLE, TAPS_PER_PHASE).

    A Kaiser-windowed sinc at the original Nyquist frequency (a 4th-band
    filter, so phase 0 reproduces the samples and only phases 1-3 are
    computed).  Row p gives the value p/4 of a sample after x[n - TP_DELAY]."""
    n = OVERSAMPLE * TAPS_PER_PHASE
    t = (np.arange(n + 1) - n / 2) / OVERSAMPLE  # in input samples, centre at 0
    h = np.sinc(t) * np.kaiser(n + 1, 8.0)
    phases = np.zeros((OVERSAMPLE, TAPS_PER_PHASE))
    for p in range(OVERSAMPLE):
        for k in range(TAPS_PER_PHASE):
            j = OVERSAMPLE * k + p
            phases[p, k] = h[j] if j <= n else 0.0
    # each phase sums to 1 so a constant stays a constant
    phases /= phases.sum(axis=1, keepdims=True)
    return phases


@njit(cache=True, nogil=True)
def hop_powers(kx, weights, hop, acc, count, out):
    """Accumulate weighted mean-square power of K-weighted ``kx`` (channels, n)
    into hops of ``hop`` samples.

    ``acc`` (1,) float64 and ``count`` (1,) int64 carry the unfinished hop
    between calls; finished hop powers (sum over channels of weight * mean
    square) are written to ``out`` and their number returned."""
    n_ch, n = kx.shape
    k = 0
    for i in range(n):
        s = 0.0
        for c in range(n_ch):
            v = kx[c, i]
            s += weights[c] * v * v
        acc[0] += s
        count[0] += 1
        if count[0] == hop:
            out[k] = acc[0] / hop
            k += 1
            acc[0] = 0.0
            count[0] = 0
    return k


def gated_loudness(hops: np.ndarray, hops_per_block: int = 4) -> float:
    """Integrated loudness (LUFS) from hop powers: 400 ms blocks every 100 ms,
    absolute gate at -70 LUFS, relative gate 10 LU below the absolute-gated
    mean.  ``-inf`` when no block passes (silence or shorter than 400 ms)."""
    hops = np.asarray(hops, np.float64)
    if hops.size < hops_per_block:
        return -math.inf
    c = np.concatenate([[0.0], np.cumsum(hops)])
    blocks = (c[hops_per_block:] - c[:-hops_per_block]) / hops_per_block
    with np.errstate(divide="ignore"):
        lk = OFFSET_DB + 10.0 * np.log10(blocks)
    gated = blocks[lk > ABSOLUTE_GATE_LUFS]
    if gated.size == 0:
        return -math.inf
    rel = OFFSET_DB + 10.0 * math.log10(gated.mean()) + RELATIVE_GATE_LU
    final = blocks[(lk > ABSOLUTE_GATE_LUFS) & (lk > rel)]
    if final.size == 0:
        return -math.inf
    return OFFSET_DB + 10.0 * math.log10(final.mean())


@njit(cache=True, nogil=True)
def true_peak_update(x, taps, hist, peak):
    """Largest |value| of the 4x-interpolated ``x`` (channels, n) per channel,
    merged into ``peak`` (channels,).  ``hist`` (channels, TAPS_PER_PHASE - 1)
    holds the previous input samples and is updated."""
    n_ch, n = x.shape
    n_taps = taps.shape[1]
    h = n_taps - 1
    for c in range(n_ch):
        ext = np.empty(h + n)
        ext[:h] = hist[c]
        for i in range(n):
            ext[h + i] = x[c, i]
        m = peak[c]
        for i in range(n):
            t = h + i
            v = abs(ext[t])
            if v > m:
                m = v
            for p in range(1, taps.shape[0]):
                acc = 0.0
                for k in range(n_taps):
                    acc += taps[p, k] * ext[t - k]
                if abs(acc) > m:
                    m = abs(acc)
        peak[c] = m
        hist[c, :] = ext[n:]


@njit(cache=True, nogil=True)
def true_peak_limit(x, out, taps, gain, ceiling, release, hist, rring, mring, pos, msum, g, since):
    """Gain ``gain`` then a look-ahead limiter on the 4x true peak: no
    interpolated output value exceeds ``ceiling`` (linear).

    Latency TP_DELAY + L samples, L = rring.shape[1] - 1.  Per channel state:
    ``hist`` (C, TAPS_PER_PHASE - 1 + L) input history, ``rring``/``mring``
    (C, L + 1) rings of the wanted gain and its look-ahead minimum, ``pos``
    (C,) ring position, ``msum`` (C,) sum of ``mring``, ``g`` (C,) applied
    gain, ``since`` (C,) samples since the wanted gain was last below 1.

    The wanted gain r = min(1, ceiling / true peak) is turned into
    m = min(r over the next L + 1 samples) and then averaged over L + 1
    samples, which never exceeds r at any sample (each average covers it),
    so the gain reaches its floor smoothly before the peak; it recovers with
    a one-pole ``release``.
    """
    n_ch, n = x.shape
    n_taps = taps.shape[1]
    span = rring.shape[1]  # L + 1
    look = span - 1
    hx = hist.shape[1]
    delay = TP_DELAY + look
    for c in range(n_ch):
        ext = np.empty(hx + n)
        ext[:hx] = hist[c]
        for i in range(n):
            ext[hx + i] = x[c, i] * gain
        # a block whose interpolated peak cannot reach the ceiling needs no detector
        bound = 0.0
        for i in range(hx + n):
            if abs(ext[i]) > bound:
                bound = abs(ext[i])
        quiet = bound * 1.2 <= ceiling  # phase filters overshoot by < 20 %
        gc = g[c]
        for i in range(n):
            t = hx + i
            r = 1.0
            if not quiet:
                d = abs(ext[t - TP_DELAY])
                for p in range(1, taps.shape[0]):
                    acc = 0.0
                    for k in range(n_taps):
                        acc += taps[p, k] * ext[t - k]
                    if abs(acc) > d:
                        d = abs(acc)
                if d > ceiling:
                    r = ceiling / d
            j = pos[c]
            rring[c, j] = r
            if r < 1.0:
                since[c] = 0
            else:
                since[c] += 1
            if since[c] > span:
                m = 1.0
            else:
                m = 1.0
                for k in range(span):
                    if rring[c, k] < m:
                        m = rring[c, k]
            msum[c] += m - mring[c, j]
            mring[c, j] = m
            pos[c] = (j + 1) % span
            a = msum[c] / span
            if since[c] > 2 * span:
                a = 1.0
                msum[c] = float(span)  # no drift once idle
            gc = gc + release * (1.0 - gc)
            if a < gc:
                gc = a
            if gc > 1.0 - 1e-9 and a >= 1.0:
                gc = 1.0
            out[c, i] = ext[t - delay] * gc
        g[c] = gc
        hist[c, :] = ext[n:n + hx]
