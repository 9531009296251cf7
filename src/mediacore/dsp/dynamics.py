"""Gain, automatic gain control and a look-ahead peak limiter."""

import math

from numba import njit

# indices into the AGC `params` array
(A_TARGET_DB, A_MAX_GAIN_DB, A_MIN_GAIN_DB, A_STEP_DB, A_LEVEL_ALPHA, A_NOISE_ALPHA,
 A_MAX_NOISE_DB, A_GATE_DB, A_MIN_SPEECH_DB, A_WARMUP_BLOCKS) = range(10)
N_AGC_PARAMS = 10


@njit(cache=True, nogil=True)
def apply_gain_ramp(x, out, gain_from, gain_to):
    """out = x * gain moving linearly from ``gain_from`` to ``gain_to`` (linear, per channel)."""
    n_ch, n = x.shape
    for c in range(n_ch):
        step = (gain_to[c] - gain_from[c]) / n
        for i in range(n):
            out[c, i] = x[c, i] * (gain_from[c] + step * (i + 1))


@njit(cache=True, nogil=True)
def agc_blocks(x, out, block, speech, level_pow, noise_pow, floor_db, n_speech, gain_db, params, gain_out):
    """Adaptive digital gain toward a target speech level, block by block.

    ``speech`` (channels, blocks) int8: 1 speech, 0 not, -1 unknown (then a
    level gate ``A_GATE_DB`` above the noise estimate decides).  The speech
    level is a power average over speech blocks, the noise level one over the
    others.  The wanted gain is target - level, bounded by the maximum gain
    and by the noise cap (amplified noise stays below ``A_MAX_NOISE_DB``); it
    moves by at most ``A_STEP_DB`` per block, ramped inside the block so no
    step is audible.  ``level_pow``/``noise_pow`` are 0 before the first
    estimate.  ``gain_out`` (channels, blocks) receives the gain in dB.
    """
    n_ch, n = x.shape
    target = params[A_TARGET_DB]
    step_max = params[A_STEP_DB]
    a_lvl = params[A_LEVEL_ALPHA]
    a_noise = params[A_NOISE_ALPHA]
    for c in range(n_ch):
        for b in range(n // block):
            acc = 0.0
            s0 = b * block
            for i in range(s0, s0 + block):
                acc += x[c, i] * x[c, i]
            p = acc / block + 1e-12
            p_db = 10.0 * math.log10(p)
            floor_db[c] = min(p_db, floor_db[c] + 0.03)
            is_speech = speech[c, b]
            if is_speech < 0:
                is_speech = 1 if p_db > floor_db[c] + params[A_GATE_DB] else 0
            if is_speech == 1 and p_db < params[A_MIN_SPEECH_DB]:
                is_speech = 0
            if is_speech == 1:
                n_speech[c] += 1
                if n_speech[c] <= params[A_WARMUP_BLOCKS]:
                    level_pow[c] += (p - level_pow[c]) / n_speech[c]
                else:
                    level_pow[c] = a_lvl * level_pow[c] + (1.0 - a_lvl) * p
            else:
                noise_pow[c] = p if noise_pow[c] == 0.0 else a_noise * noise_pow[c] + (1.0 - a_noise) * p
            g_old = gain_db[c]
            if n_speech[c] >= 0.25 * params[A_WARMUP_BLOCKS]:
                want = target - 10.0 * math.log10(level_pow[c])
                want = min(max(want, params[A_MIN_GAIN_DB]), params[A_MAX_GAIN_DB])
                if noise_pow[c] > 0.0:
                    # never lift the noise floor above the cap (attenuation is not forced by it)
                    cap = max(params[A_MAX_NOISE_DB] - 10.0 * math.log10(noise_pow[c]), 0.0)
                    want = min(want, max(cap, min(g_old, want)))
                g_new = g_old + min(max(want - g_old, -step_max), step_max)
            else:
                g_new = g_old
            gain_db[c] = g_new
            lin_old = 10.0 ** (g_old / 20.0)
            step = (10.0 ** (g_new / 20.0) - lin_old) / block
            for i in range(block):
                out[c, s0 + i] = x[c, s0 + i] * (lin_old + step * (i + 1))
            gain_out[c, b] = g_new


@njit(cache=True, nogil=True)
def limiter_inplace(x, out, ceiling, release, delay, need, smin, pos, env, box_sum, since_over):
    """Look-ahead peak limiter; ``|out| <= ceiling`` for every sample.  ``out`` may be ``x``.

    With look-ahead L the output is the input delayed by L samples.  For each
    new sample the needed gain is min(1, ceiling/|x|); the minimum of the
    needed gain over the last L+1 samples is released exponentially (never
    above that minimum) and stored in ``smin``; the applied gain is the mean
    of the last L+1 such values.  Every value in that mean is <= the needed
    gain of the sample leaving the delay line, so the mean is too: the
    ceiling holds, and the gain changes smoothly over L samples.

    State per channel: ``delay`` (L), ``need`` (L+1), ``smin`` (L+1) ring
    buffers, ``pos`` (channels, 2) ring indices, ``env`` released gain,
    ``box_sum`` sum of ``smin``, ``since_over`` samples since the last one
    above the ceiling (while > L the window minimum is 1 without a scan).
    """
    n_ch, n = x.shape
    look = delay.shape[1]
    span = look + 1
    for c in range(n_ch):
        p = pos[c, 0]
        d = pos[c, 1]
        for i in range(n):
            v = x[c, i]
            a = abs(v)
            if a > ceiling:
                need[c, p] = ceiling / a
                since_over[c] = 0
            else:
                need[c, p] = 1.0
                since_over[c] += 1
            m = 1.0
            if since_over[c] <= look:
                for k in range(span):
                    if need[c, k] < m:
                        m = need[c, k]
            e = env[c] + (1.0 - env[c]) * release
            if m < e:
                e = m
            env[c] = e
            box_sum[c] += e - smin[c, p]
            smin[c, p] = e
            g = box_sum[c] / span
            if look > 0:
                y = delay[c, d] * g
                delay[c, d] = v
                d += 1
                if d == look:
                    d = 0
            else:
                y = v * g
            # float rounding guard; the gain above already keeps |y| <= ceiling
            if y > ceiling:
                y = ceiling
            elif y < -ceiling:
                y = -ceiling
            out[c, i] = y
            p += 1
            if p == span:
                p = 0
        pos[c, 0] = p
        pos[c, 1] = d
