"""Energy/noise-floor voice activity detection and hangover smoothing."""

import math

from numba import njit


@njit(cache=True, nogil=True)
def energy_speech_prob(x, block, floor_db, rise_db, threshold_db, slope_db, min_level_db, prob_out):
    """Speech probability per block from the block level above a tracked noise floor.

    The floor follows the level down at once and creeps up by ``rise_db`` per
    block, so it sits at the quiet parts between words.  ``floor_db`` (channels,)
    is the state; a value of +inf means "not started".
    """
    n_ch, n = x.shape
    for c in range(n_ch):
        for b in range(n // block):
            acc = 0.0
            for i in range(b * block, (b + 1) * block):
                acc += x[c, i] * x[c, i]
            level = 10.0 * math.log10(acc / block + 1e-12)
            if level < floor_db[c]:
                floor_db[c] = level
            else:
                floor_db[c] += rise_db
            snr = level - floor_db[c]
            p = 1.0 / (1.0 + math.exp(-(snr - threshold_db) / slope_db))
            if level < min_level_db:
                p = 0.0
            prob_out[c, b] = p


@njit(cache=True, nogil=True)
def hangover_decision(prob, smooth, hangover_blocks, attack, smoothed_out, decision_out, p_state, hang_state):
    """Smooth the probability and hold a positive decision for ``hangover_blocks``."""
    n_ch, n_blocks = prob.shape
    for c in range(n_ch):
        for b in range(n_blocks):
            p = prob[c, b]
            # rise fast, fall slowly: onsets are not clipped, word gaps are bridged
            a = attack if p > p_state[c] else smooth
            p_state[c] = a * p_state[c] + (1.0 - a) * p
            smoothed_out[c, b] = p_state[c]
            if p_state[c] >= 0.5:
                hang_state[c] = hangover_blocks
                decision_out[c, b] = True
            elif hang_state[c] > 0:
                hang_state[c] -= 1
                decision_out[c, b] = True
            else:
                decision_out[c, b] = False
