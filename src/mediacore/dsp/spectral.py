"""Classical single-channel noise suppression in the STFT domain.

Per 50 %-overlapped sqrt-Hann frame and per frequency bin:

* noise PSD: speech-presence-probability tracker (Gerkmann & Hendriks,
  2012): a fixed a-priori SNR under speech presence gives a posterior speech
  probability per bin; the noise periodogram is the expectation of the noise
  power given that probability, recursively smoothed.  It follows rising
  noise within about a second and never freezes on stationary noise.
* gain: decision-directed a-priori SNR (Ephraim & Malah) and the
  log-spectral-amplitude estimator (MMSE-LSA), floored at the
  suppression-strength limit.  A high decision-directed weight and an
  a-priori SNR floor keep musical noise down.
* bins above ``hf_start_bin`` (8 kHz at 48 kHz) share one gain per band, so
  the sparse high band does not sparkle.
"""

import math

import numpy as np
from numba import njit

from .mathfn import expint_e1

# indices into the `params` array
P_ALPHA_NOISE, P_ALPHA_DD, P_XI_H1, P_XI_MIN, P_GAIN_FLOOR, P_SPP_LO, P_SPP_HI, P_GAIN_SMOOTH = range(8)
N_PARAMS = 8


def sqrt_hann(n: int) -> np.ndarray:
    """Periodic sqrt-Hann window: analysis x synthesis sums to 1 at 50 % overlap."""
    return np.sqrt(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n))


@njit(cache=True, nogil=True)
def denoise_blocks(x, out, inbuf, ola, noise, clean_prev, spp_bar, gain_prev, n_frames,
                   window, band_of_bin, n_bands, params, speech_prob):
    """Suppress noise in ``x`` (channels, k*hop) -> ``out``; latency = hop.

    State per channel: ``inbuf`` (2*hop) last input frame, ``ola`` (hop)
    overlap-add tail, ``noise`` / ``clean_prev`` / ``spp_bar`` / ``gain_prev``
    (bins), ``n_frames`` frame counter.  ``band_of_bin[k]`` is -1 for bins with
    their own gain, else the shared band index.  ``speech_prob`` (channels,
    k) receives a per-block speech probability.
    """
    n_ch, n = x.shape
    win_len = window.shape[0]
    hop = win_len // 2
    n_bins = hop + 1
    alpha_n = params[P_ALPHA_NOISE]
    alpha_dd = params[P_ALPHA_DD]
    xi_h1 = params[P_XI_H1]
    xi_min = params[P_XI_MIN]
    g_floor = params[P_GAIN_FLOOR]
    lo = int(params[P_SPP_LO])
    hi = int(params[P_SPP_HI])
    g_smooth = params[P_GAIN_SMOOTH]
    lr_const = xi_h1 / (1.0 + xi_h1)
    frame = np.empty(win_len)
    gain = np.empty(n_bins)
    band_sum = np.zeros(n_bands)
    band_cnt = np.zeros(n_bands)
    for c in range(n_ch):
        for b in range(n // hop):
            # slide the analysis buffer by one hop
            for i in range(hop):
                inbuf[c, i] = inbuf[c, i + hop]
                inbuf[c, i + hop] = x[c, b * hop + i]
            for i in range(win_len):
                frame[i] = inbuf[c, i] * window[i]
            spec = np.fft.rfft(frame)
            first = n_frames[c] == 0
            spp_acc = 0.0
            for k in range(n_bins):
                p = spec[k].real * spec[k].real + spec[k].imag * spec[k].imag
                if first:
                    noise[c, k] = max(p, 1e-14)
                # posterior speech presence probability with a fixed a-priori SNR
                g_post = p / noise[c, k]
                arg = min(g_post * lr_const, 200.0)
                ph1 = 1.0 / (1.0 + (1.0 + xi_h1) * math.exp(-arg))
                spp_bar[c, k] = 0.9 * spp_bar[c, k] + 0.1 * ph1
                if spp_bar[c, k] > 0.99:  # avoid a stagnating estimate
                    ph1 = min(ph1, 0.99)
                expected_noise = (1.0 - ph1) * p + ph1 * noise[c, k]
                noise[c, k] = max(alpha_n * noise[c, k] + (1.0 - alpha_n) * expected_noise, 1e-14)
                if lo <= k < hi:
                    spp_acc += ph1
                # decision-directed a-priori SNR, then the LSA gain
                g_post = p / noise[c, k]
                xi = alpha_dd * clean_prev[c, k] / noise[c, k] + (1.0 - alpha_dd) * max(g_post - 1.0, 0.0)
                xi = max(xi, xi_min)
                v = xi * g_post / (1.0 + xi)
                g = xi / (1.0 + xi) * math.exp(0.5 * expint_e1(max(v, 1e-10)))
                g = min(max(g, g_floor), 1.0)
                gain[k] = g
                clean_prev[c, k] = g * g * p
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
            # light temporal smoothing of falling gains against gain flicker
            for k in range(n_bins):
                g = gain[k]
                if g < gain_prev[c, k]:
                    g = g_smooth * gain_prev[c, k] + (1.0 - g_smooth) * g
                gain_prev[c, k] = g
                spec[k] = spec[k] * g
            y = np.fft.irfft(spec, win_len)
            for i in range(hop):
                out[c, b * hop + i] = ola[c, i] + y[i] * window[i]
                ola[c, i] = y[i + hop] * window[i + hop]
            speech_prob[c, b] = spp_acc / max(hi - lo, 1)
            n_frames[c] += 1
