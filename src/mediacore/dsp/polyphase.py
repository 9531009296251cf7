"""Streaming rational-ratio polyphase resampling (FIR, Kaiser window)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from numba import njit


def design_resampler(rate_in: int, rate_out: int, *, passband: float = 0.9,
                     stopband_db: float = 90.0) -> tuple[int, int, np.ndarray, int]:
    """Design the prototype low-pass for ``rate_in`` -> ``rate_out``.

    The passband ends at ``passband`` times the lower Nyquist frequency and the
    stopband starts at the lower Nyquist frequency, so nothing above it can
    alias or image into the output by more than -``stopband_db``.

    Returns ``(up, down, phases, delay_out)``: the reduced ratio, the filter
    split into ``up`` polyphase rows of equal length (gain ``up`` included),
    and the group delay in output samples (an integer by construction).
    """
    ratio = Fraction(rate_out, rate_in)
    up, down = ratio.numerator, ratio.denominator
    fs_up = rate_in * up
    nyq_low = min(rate_in, rate_out) / 2
    f_pass, f_stop = passband * nyq_low, nyq_low
    width = 2 * math.pi * (f_stop - f_pass) / fs_up
    beta = 0.1102 * (stopband_db - 8.7)
    n_taps = int(math.ceil((stopband_db - 7.95) / (2.285 * width))) + 1
    # make the group delay (n_taps-1)/2 a multiple of `down`: an integer delay in output samples
    half = math.ceil((n_taps - 1) / 2 / down) * down
    n_taps = 2 * half + 1
    t = np.arange(n_taps) - half
    cutoff = (f_pass + f_stop) / 2 / (fs_up / 2)
    h = cutoff * np.sinc(cutoff * t) * np.kaiser(n_taps, beta) * up
    per_phase = -(-n_taps // up)
    h = np.concatenate([h, np.zeros(per_phase * up - n_taps)])
    # phases[p, k] = h[p + k*up]: output j uses phase (j*down) % up over inputs (j*down)//up - k
    phases = np.ascontiguousarray(h.reshape(per_phase, up).T)
    return up, down, phases, half // down


@njit(cache=True, nogil=True, fastmath=True)  # lets the dot product vectorise
def resample_push(x, phases, up, down, hist, counters, out):
    """Resample a chunk ``x`` (channels, n); return the number of outputs written.

    ``hist`` (channels, taps-1) float64 holds the most recent inputs;
    ``counters`` = [inputs consumed, outputs produced] since the stream began.
    ``out`` must have room for ceil(n * up / down) + 1 samples per channel.
    Output j is sum_k phases[(j*down) % up, k] * input[(j*down)//up - k].
    """
    n_ch, n = x.shape
    n_taps = phases.shape[1]
    n_hist = n_taps - 1
    n_in_before = counters[0]
    n_in_after = n_in_before + n
    j0 = counters[1]
    # history and new input in one contiguous buffer: the inner loop is a plain dot product
    buf = np.empty(n_hist + n)
    n_written = 0
    for c in range(n_ch):
        buf[:n_hist] = hist[c]
        for i in range(n):
            buf[n_hist + i] = x[c, i]
        j = j0
        n_written = 0
        while True:
            t = j * down
            base = t // up
            if base >= n_in_after:
                break
            row = phases[t - base * up]
            # newest input used is at buffer index `pos`, the oldest at pos - (n_taps - 1)
            pos = base - n_in_before + n_hist
            acc = 0.0
            for k in range(n_taps):
                acc += row[k] * buf[pos - k]
            out[c, n_written] = acc
            n_written += 1
            j += 1
        hist[c] = buf[n:]
    counters[0] = n_in_after
    counters[1] = j0 + n_written
    return n_written
