"""Classical single-channel noise suppression in the STFT domain.

Per overlapped sqrt-Hann frame and per *unit*: below ``coarse_above_hz``
(8 kHz) a unit is one FFT bin; above it, one 1 kHz band (mean power of its
bins), so the sparse high band is tracked and gained as a whole (no
sparkle) and costs a fraction of per-bin work.  For each unit:

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
* in frames with clear speech (frame a-priori SNR between ``FRAME_LO_DB``
  and ``FRAME_HI_DB``) the floor of the fine units rises toward
  ``SPEECH_FLOOR``: noise between harmonics is masked there, and the
  shallower floor keeps speech detail (PESQ, clean speech untouched).
* the unit gains, times a fixed zero-phase ``shaping`` curve (the optional
  high-pass), multiply the spectrum; overlap-add resynthesis.
"""

import math

import numpy as np
from numba import njit

from .mathfn import expint_e1
from .stft import overlap_add, slide_window

# indices into the `params` array
(P_ALPHA_NOISE, P_ALPHA_DD, P_XI_H1, P_XI_MIN, P_GAIN_FLOOR, P_SPP_LO, P_SPP_HI, P_MIN_BIAS, P_ZETA_MIN,
 P_ZETA_MAX, P_Q_MAX, P_SPEECH_FLOOR, P_FRAME_LO_DB, P_FRAME_HI_DB, P_N_FINE) = range(15)
N_PARAMS = 15
# rows of the per-unit state array
(S_NOISE, S_CLEAN_PREV, S_SPP_BAR, S_SMOOTH_POW, S_SUB_MIN, S_PAST_MIN, S_ZETA) = range(7)
N_STATE = 7
LOCAL_HALF = 1  # local neighbourhood: 3 units
GLOBAL_HALF = 10  # global neighbourhood: 21 units (about 1 kHz at 50 Hz per bin)
#: minimum statistics: N_SUBWIN sub-windows of SUBWIN_FRAMES frames each (1.6 s at 10 ms hops)
N_SUBWIN = 8
SUBWIN_FRAMES = 20
#: the first frames of a stream are averaged into the initial noise estimate
INIT_FRAMES = 8


def sqrt_hann(n: int, overlap: int = 2) -> np.ndarray:
    """Periodic sqrt-Hann window scaled so analysis x synthesis sums to 1 at hop n/overlap."""
    return np.sqrt((0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)) * 2.0 / overlap)


def unit_edges(n_bins: int, bin_hz: float, coarse_above_hz: float,
               band_hz: float = 1000.0) -> tuple[np.ndarray, int]:
    """Units: single bins below ``coarse_above_hz``, then bands of ``band_hz``.

    Returns the first bin of every unit (and n_bins at the end) and the number
    of single-bin ("fine") units, which come first.
    """
    start = min(int(round(coarse_above_hz / bin_hz)), n_bins)
    width = max(1, int(round(band_hz / bin_hz)))
    edges = np.concatenate([np.arange(start), np.arange(start, n_bins, width), [n_bins]]).astype(np.int64)
    return edges, start


@njit(cache=True, nogil=True, inline="always")
def _presence(z, z_min, inv_log_span):
    """Map an averaged a-priori SNR to a presence likelihood in [0, 1] (log-linear ramp)."""
    if z <= z_min:
        return 0.0
    return min(math.log(z / z_min) * inv_log_span, 1.0)


@njit(cache=True, nogil=True)
def denoise_blocks(x, out, hop, inbuf, ola, state, win_min, n_frames, window, edges, shaping, params,
                   speech_prob):
    """Suppress noise in ``x`` (channels, k*hop) -> ``out``; latency = window - hop.

    State per channel: ``inbuf`` (window) the last input frame, ``ola``
    (window - hop) the overlap-add tail, ``state`` (N_STATE, units) the
    per-unit rows S_*, ``win_min`` (units, N_SUBWIN) minima of the past
    sub-windows, ``n_frames`` frames seen.  ``edges`` (units+1) first bin of
    each unit.  ``speech_prob`` (channels, k) receives the mean speech
    presence between ``P_SPP_LO`` and ``P_SPP_HI`` per block.
    """
    n_ch, n = x.shape
    win_len = window.shape[0]
    n_units = edges.shape[0] - 1
    alpha_n = params[P_ALPHA_NOISE]
    alpha_dd = params[P_ALPHA_DD]
    xi_h1 = params[P_XI_H1]
    xi_min = params[P_XI_MIN]
    log_floor = math.log(params[P_GAIN_FLOOR])
    lo = int(params[P_SPP_LO])
    hi = int(params[P_SPP_HI])
    min_bias = params[P_MIN_BIAS]
    z_min = params[P_ZETA_MIN]
    inv_log_span = 1.0 / math.log(params[P_ZETA_MAX] / z_min)
    q_max = params[P_Q_MAX]
    log_speech_floor = math.log(max(params[P_SPEECH_FLOOR], params[P_GAIN_FLOOR]))
    frame_lo = params[P_FRAME_LO_DB]
    inv_frame_span = 1.0 / (params[P_FRAME_HI_DB] - frame_lo)
    n_fine = int(params[P_N_FINE])
    lr_const = xi_h1 / (1.0 + xi_h1)
    frame = np.empty(win_len)
    power = np.empty(n_units)
    xi = np.empty(n_units)
    post = np.empty(n_units)
    gain = np.empty(n_units)
    csum = np.empty(n_units + 1)
    for c in range(n_ch):
        st = state[c]
        for b in range(n // hop):
            slide_window(inbuf, c, x, b * hop, hop, window, 1.0, frame)
            spec = np.fft.rfft(frame)
            nf = n_frames[c]
            warmup = nf < INIT_FRAMES
            sub_pos = nf % SUBWIN_FRAMES
            sub_idx = (nf // SUBWIN_FRAMES) % N_SUBWIN
            # pass 1: noise PSD, a-posteriori and a-priori SNR per unit
            for u in range(n_units):
                acc = 0.0
                for k in range(edges[u], edges[u + 1]):
                    acc += spec[k].real * spec[k].real + spec[k].imag * spec[k].imag
                p = acc / (edges[u + 1] - edges[u])
                power[u] = p
                if nf == 0:
                    st[S_NOISE, u] = 0.0
                    st[S_PAST_MIN, u] = 1e30
                    for j in range(N_SUBWIN):
                        win_min[c, u, j] = 1e30
                if warmup:
                    # initial estimate: plain average of the first frames (one periodogram is too noisy)
                    st[S_NOISE, u] = max(st[S_NOISE, u] + (p - st[S_NOISE, u]) / (nf + 1), 1e-14)
                    st[S_SMOOTH_POW, u] = st[S_NOISE, u]
                    st[S_SUB_MIN, u] = st[S_NOISE, u]
                # minimum statistics over the last N_SUBWIN sub-windows
                sp = 0.85 * st[S_SMOOTH_POW, u] + 0.15 * p
                st[S_SMOOTH_POW, u] = sp
                st[S_SUB_MIN, u] = sp if sub_pos == 0 else min(st[S_SUB_MIN, u], sp)
                if sub_pos == SUBWIN_FRAMES - 1:
                    win_min[c, u, sub_idx] = st[S_SUB_MIN, u]
                    m = 1e30
                    for j in range(N_SUBWIN):
                        m = min(m, win_min[c, u, j])
                    st[S_PAST_MIN, u] = m
                p_min = min(st[S_SUB_MIN, u], st[S_PAST_MIN, u])
                # speech-presence-probability noise tracker, bounded above by the minimum statistics
                noise = st[S_NOISE, u]
                if not warmup:
                    ph1 = 1.0 / (1.0 + (1.0 + xi_h1) * math.exp(-min(p / noise * lr_const, 200.0)))
                    spp = 0.9 * st[S_SPP_BAR, u] + 0.1 * ph1
                    st[S_SPP_BAR, u] = spp
                    if spp > 0.99:  # avoid a stagnating estimate
                        ph1 = min(ph1, 0.99)
                    noise = alpha_n * noise + (1.0 - alpha_n) * ((1.0 - ph1) * p + ph1 * noise)
                    noise = max(min(noise, min_bias * p_min), 1e-14)
                    st[S_NOISE, u] = noise
                g_post = p / noise
                post[u] = g_post
                # decision-directed a-priori SNR, and its recursive average for speech presence
                xi[u] = max(alpha_dd * st[S_CLEAN_PREV, u] / noise + (1.0 - alpha_dd) * max(g_post - 1.0, 0.0),
                            xi_min)
                st[S_ZETA, u] = 0.7 * st[S_ZETA, u] + 0.3 * xi[u]
            # speech presence: local, global and frame averages of zeta
            csum[0] = 0.0
            for u in range(n_units):
                csum[u + 1] = csum[u] + st[S_ZETA, u]
            z_frame = (csum[hi] - csum[lo]) / max(hi - lo, 1)
            p_frame = _presence(z_frame, z_min, inv_log_span)
            w = min(max((10.0 * math.log10(z_frame + 1e-12) - frame_lo) * inv_frame_span, 0.0), 1.0)
            log_fine_floor = log_floor + (log_speech_floor - log_floor) * w
            presence_acc = 0.0
            for u in range(n_units):
                # neighbourhoods stay on their side of the fine/coarse boundary, so speech below
                # 8 kHz does not open the (speech-free) band above it
                first, last = (0, n_fine) if u < n_fine else (n_fine, n_units)
                a = max(u - LOCAL_HALF, first)
                e = min(u + LOCAL_HALF + 1, last)
                p_local = _presence((csum[e] - csum[a]) / (e - a), z_min, inv_log_span)
                a = max(u - GLOBAL_HALF, first)
                e = min(u + GLOBAL_HALF + 1, last)
                p_global = _presence((csum[e] - csum[a]) / (e - a), z_min, inv_log_span)
                q = min(1.0 - p_local * p_global * p_frame, q_max)
                v = min(xi[u] * post[u] / (1.0 + xi[u]), 200.0)
                # MMSE-LSA gain under speech presence
                log_g1 = min(math.log(xi[u] / (1.0 + xi[u])) + 0.5 * expint_e1(max(v, 1e-10)), 0.0)
                presence = 1.0 / (1.0 + q / (1.0 - q) * (1.0 + xi[u]) * math.exp(-v))
                if lo <= u < hi:
                    presence_acc += presence
                st[S_CLEAN_PREV, u] = math.exp(2.0 * log_g1) * power[u]
                # OM-LSA: G = G1^p * Gmin^(1-p), never below Gmin; coarse bands keep the deep floor
                log_fl = log_fine_floor if u < n_fine else log_floor
                gain[u] = math.exp(max(presence * log_g1 + (1.0 - presence) * log_fl, log_fl))
            for u in range(n_units):
                for k in range(edges[u], edges[u + 1]):
                    spec[k] = spec[k] * (gain[u] * shaping[k])
            overlap_add(np.fft.irfft(spec, win_len), window, ola, c, out, b * hop, hop)
            speech_prob[c, b] = presence_acc / max(hi - lo, 1)
            n_frames[c] = nf + 1
