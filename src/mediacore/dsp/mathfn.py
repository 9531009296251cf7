"""Special functions for the spectral kernels."""

import math

from numba import njit


@njit(cache=True, nogil=True, inline="always")
def expint_e1(x):
    """Exponential integral E1(x) for x > 0 (Abramowitz & Stegun 5.1.53/5.1.56, |rel err| < 5e-5)."""
    if x <= 0.0:
        return 1e30
    if x < 1.0:
        return (-math.log(x) - 0.57721566 + x * (0.99999193 + x * (-0.24991055 + x * (
            0.05519968 + x * (-0.00976004 + x * 0.00107857)))))
    num = x * x + 2.334733 * x + 0.250621
    den = x * x + 3.330657 * x + 1.681534
    return math.exp(-x) / x * num / den
