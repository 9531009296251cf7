"""Cascaded biquads (second-order sections), transposed direct form II."""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def sosfilt_inplace(x, sos, zi, out):
    """Filter ``x`` (channels, n) with ``sos`` (sections, 6) normalised so a0 == 1.

    ``zi`` (channels, sections, 2) float64 holds the filter memory between calls
    and is updated.  Same recursion as scipy.signal.sosfilt.
    """
    n_ch, n = x.shape
    n_sec = sos.shape[0]
    for c in range(n_ch):
        for i in range(n):
            v = np.float64(x[c, i])
            for s in range(n_sec):
                y = sos[s, 0] * v + zi[c, s, 0]
                zi[c, s, 0] = sos[s, 1] * v - sos[s, 4] * y + zi[c, s, 1]
                zi[c, s, 1] = sos[s, 2] * v - sos[s, 5] * y
                v = y
            out[c, i] = v
