"""Classical single-channel noise suppression in the STFT domain.

Per 50 %-overlapped sqrt-Hann frame and per frequency bin:

* noise PSD: speech-presence-probability tracker (Gerkmann & Hendriks,
  2012): a fixed a-priori SNR under speech presence gives a posterior speech
  probability per bin; the noise periodogram is the expectation of the noise
  power given that probability, recursively smoothed.  It follows rising
  noise within about a second and never freezes on stationary noise.  A
  minimum-statistics band (Martin, 2001: the minimum of the smoothed
  periodogram over about 1.6 s) bounds the estimate: at most a bias factor
  above it, so it cannot creep up into long stretches of speech, and never
  below it, so a bin that started too low cannot stay stuck there.  The
  first 80 ms are averaged into the initial estimate.
* gain: decision-directed a-priori SNR (Ephraim & Malah) and the
  log-spectral-amplitude estimator (MMSE-LSA), combined with the floor by
  the speech presence probability as in OM-LSA (Cohen & Berdugo, 2001):
  G = G_lsa^p * G_min^(1-p).  The a-priori speech absence probability comes
  from the recursively averaged a-priori SNR over a local (3 bins) and a
  global (about 1 kHz) neighbourhood and over the frame, so isolated noise
  peaks are pushed to the floor (less musical noise, quieter pauses) while
  harmonics inside speech keep their gain.
* bins above ``hf_start_bin`` (8 kHz at 48 kHz) share one gain per band, so
  the sparse high band does not sparkle.
"""

import math

import numpy as np
from numba import njit

from .mathfn import expint_e1

# indices into the `params` array
P_ALPHA_NOISE, P_ALPHA_DD, P_XI_H1, P_XI_MIN, P_GAIN_FLOOR, P_SPP_LO, P_SPP_HI, P_GAIN_SMOOTH, P_MIN_BIAS, P_ZETA_MIN, P_ZETA_MAX, P_Q_MAX, P_SPEECH_FLOOR, P_FRAME_LO_DB, P_FRAME_HI_DB, P_MIN_LOWER = range(16)
N_PARAMS = 16
LOCAL_HALF = 1  # local neighbourhood: 3 bins
GLOBAL_HALF = 10  # global neighbourhood: 21 bins (about 1 kHz at 50 Hz per bin)
#: minimum statistics: N_SUBWIN sub-windows of SUBWIN_FRAMES frames each
N_SUBWIN = 8
SUBWIN_FRAMES = 20
#: the first frames of a stream are averaged into the initial noise estimate
INIT_FRAMES = 8


def sqrt_hann(n: int, overlap: int = 2) -> np.ndarray:
    """Periodic sqrt-Hann window scaled so analysis x synthesis sums to 1 at hop n/overlap."""
    return np.sqrt((0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)) * 2.0 / overlap)


@njit(cache=True, nogil=True, inline="always")
def _presence(z, z_min, z_max):
    """Map an averaged a-priori SNR to a presence likelihood in [0, 1] (log-linear ramp)."""
    if z <= z_min:
        return 0.0
    if z >= z_max:
        return 1.0
    return math.log(z / z_min) / math.log(z_max / z_min)


@njit(cache=True, nogil=True)
def denoise_blocks(x, out, hop, inbuf, ola, noise, clean_prev, spp_bar, gain_prev, smooth_pow, sub_min, win_min,
                   zeta, n_frames, window, band_of_bin, n_bands, shaping, params, speech_prob):
    """Suppress noise in ``x`` (channels, k*hop) -> ``out``; latency = window - hop.

    State per channel: ``inbuf`` (window) last input frame, ``ola``
    (window - hop) overlap-add tail, and per bin: ``noise`` PSD, ``clean_prev`` previous
    clean power, ``spp_bar`` smoothed posterior, ``gain_prev``, ``smooth_pow``
    smoothed periodogram, ``sub_min`` running minimum of the current
    sub-window, ``win_min`` (bins, N_SUBWIN) minima of the previous
    sub-windows, ``zeta`` averaged a-priori SNR; ``n_frames`` frame counter.
    ``band_of_bin[k]`` is -1 for bins with their own gain, else the shared
    band index.  ``shaping`` (bins) multiplies the final gain: a zero-phase
    fixed filter (the high-pass) at no extra cost or latency.  ``speech_prob`` (channels, k) receives a per-block speech
    probability.
    """
    n_ch, n = x.shape
    win_len = window.shape[0]
    n_bins = win_len // 2 + 1
    keep = win_len - hop
    alpha_n = params[P_ALPHA_NOISE]
    alpha_dd = params[P_ALPHA_DD]
    xi_h1 = params[P_XI_H1]
    xi_min = params[P_XI_MIN]
    g_floor = params[P_GAIN_FLOOR]
    lo = int(params[P_SPP_LO])
    hi = int(params[P_SPP_HI])
    g_smooth = params[P_GAIN_SMOOTH]
    min_bias = params[P_MIN_BIAS]
    z_min = params[P_ZETA_MIN]
    z_max = params[P_ZETA_MAX]
    q_max = params[P_Q_MAX]
    g_floor_speech = params[P_SPEECH_FLOOR]
    lr_const = xi_h1 / (1.0 + xi_h1)
    frame = np.empty(win_len)
    power = np.empty(n_bins)
    xi = np.empty(n_bins)
    post = np.empty(n_bins)
    gain = np.empty(n_bins)
    csum = np.empty(n_bins + 1)
    band_sum = np.zeros(n_bands)
    band_cnt = np.zeros(n_bands)
    for c in range(n_ch):
        for b in range(n // hop):
            # slide the analysis buffer by one hop
            for i in range(keep):
                inbuf[c, i] = inbuf[c, i + hop]
            for i in range(hop):
                inbuf[c, keep + i] = x[c, b * hop + i]
            for i in range(win_len):
                frame[i] = inbuf[c, i] * window[i]
            spec = np.fft.rfft(frame)
            first = n_frames[c] == 0
            warmup = n_frames[c] < INIT_FRAMES
            sub_pos = n_frames[c] % SUBWIN_FRAMES
            sub_idx = (n_frames[c] // SUBWIN_FRAMES) % N_SUBWIN
            spp_acc = 0.0
            # pass 1: noise PSD, a-posteriori and a-priori SNR per bin
            for k in range(n_bins):
                p = spec[k].real * spec[k].real + spec[k].imag * spec[k].imag
                power[k] = p
                if first:
                    noise[c, k] = 0.0
                    for u in range(N_SUBWIN):
                        win_min[c, k, u] = 1e30
                if warmup:
                    # initial estimate: plain average of the first frames (one periodogram is too noisy)
                    noise[c, k] = max(noise[c, k] + (p - noise[c, k]) / (n_frames[c] + 1), 1e-14)
                    smooth_pow[c, k] = noise[c, k]
                    sub_min[c, k] = noise[c, k]
                # minimum statistics over the last N_SUBWIN sub-windows
                smooth_pow[c, k] = 0.85 * smooth_pow[c, k] + 0.15 * p
                if sub_pos == 0:
                    sub_min[c, k] = smooth_pow[c, k]
                else:
                    sub_min[c, k] = min(sub_min[c, k], smooth_pow[c, k])
                if sub_pos == SUBWIN_FRAMES - 1:
                    win_min[c, k, sub_idx] = sub_min[c, k]
                p_min = sub_min[c, k]
                for u in range(N_SUBWIN):
                    p_min = min(p_min, win_min[c, k, u])
                # posterior speech presence probability with a fixed a-priori SNR
                arg = min(p / noise[c, k] * lr_const, 200.0)
                ph1 = 1.0 / (1.0 + (1.0 + xi_h1) * math.exp(-arg))
                spp_bar[c, k] = 0.9 * spp_bar[c, k] + 0.1 * ph1
                if spp_bar[c, k] > 0.99:  # avoid a stagnating estimate
                    ph1 = min(ph1, 0.99)
                if not warmup:
                    expected_noise = (1.0 - ph1) * p + ph1 * noise[c, k]
                    noise[c, k] = alpha_n * noise[c, k] + (1.0 - alpha_n) * expected_noise
                    noise[c, k] = min(max(noise[c, k], params[P_MIN_LOWER] * p_min), min_bias * p_min)
                noise[c, k] = max(noise[c, k], 1e-14)
                g_post = p / noise[c, k]
                post[k] = g_post
                # decision-directed a-priori SNR, and its recursive average for speech presence
                xi[k] = max(alpha_dd * clean_prev[c, k] / noise[c, k] + (1.0 - alpha_dd) * max(g_post - 1.0, 0.0),
                            xi_min)
                zeta[c, k] = 0.7 * zeta[c, k] + 0.3 * xi[k]
            # speech presence: local, global and frame averages of zeta
            csum[0] = 0.0
            for k in range(n_bins):
                csum[k + 1] = csum[k] + zeta[c, k]
            z_frame = (csum[hi] - csum[lo]) / max(hi - lo, 1)
            p_frame = _presence(z_frame, z_min, z_max)
            # in frames with clear speech, noise between harmonics is masked: a shallower floor keeps speech detail
            w = (10.0 * math.log10(z_frame + 1e-12) - params[P_FRAME_LO_DB]) / (params[P_FRAME_HI_DB] - params[P_FRAME_LO_DB])
            floor = g_floor + (max(g_floor_speech, g_floor) - g_floor) * min(max(w, 0.0), 1.0)
            for k in range(n_bins):
                a = max(k - LOCAL_HALF, 0)
                e = min(k + LOCAL_HALF + 1, n_bins)
                p_local = _presence((csum[e] - csum[a]) / (e - a), z_min, z_max)
                a = max(k - GLOBAL_HALF, 0)
                e = min(k + GLOBAL_HALF + 1, n_bins)
                p_global = _presence((csum[e] - csum[a]) / (e - a), z_min, z_max)
                q = min(1.0 - p_local * p_global * p_frame, q_max)
                v = xi[k] * post[k] / (1.0 + xi[k])
                g_h1 = min(xi[k] / (1.0 + xi[k]) * math.exp(0.5 * expint_e1(max(v, 1e-10))), 1.0)
                presence = 1.0 / (1.0 + q / (1.0 - q) * (1.0 + xi[k]) * math.exp(-min(v, 200.0)))
                if lo <= k < hi:
                    spp_acc += presence
                clean_prev[c, k] = g_h1 * g_h1 * power[k]
                # the shallow speech-frame floor is for the speech band; coarse high bands keep the deep one
                fl = floor if band_of_bin[k] < 0 else g_floor
                gain[k] = max(g_h1 ** presence * fl ** (1.0 - presence), fl)
            # one gain per band in the coarse high band
            if n_bands > 0:
                for j in range(n_bands):
                    band_sum[j] = 0.0
                    band_cnt[j] = 0.0
                for k in range(n_bins):
                    j = band_of_bin[k]
                    if j >= 0:
                        band_sum[j] += gain[k]
                        band_cnt[j] += 1.0
                for k in range(n_bins):
                    j = band_of_bin[k]
                    if j >= 0:
                        gain[k] = band_sum[j] / band_cnt[j]
            # optional smoothing of falling gains against flicker
            for k in range(n_bins):
                g = gain[k]
                if g < gain_prev[c, k]:
                    g = g_smooth * gain_prev[c, k] + (1.0 - g_smooth) * g
                gain_prev[c, k] = g
                spec[k] = spec[k] * (g * shaping[k])
            y = np.fft.irfft(spec, win_len)
            for i in range(hop):
                out[c, b * hop + i] = ola[c, i] + y[i] * window[i]
            for i in range(keep):
                tail = ola[c, i + hop] if i + hop < keep else 0.0
                ola[c, i] = tail + y[i + hop] * window[i + hop]
            speech_prob[c, b] = spp_acc / max(hi - lo, 1)
            n_frames[c] += 1
