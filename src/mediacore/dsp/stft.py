"""Streaming STFT framing shared by the spectral kernels: slide-and-window in, overlap-add out."""

from numba import njit


@njit(cache=True, nogil=True, inline="always")
def slide_window(inbuf, c, x, start, hop, window, scale, frame):
    """Shift channel ``c`` of ``inbuf`` by one hop, append ``x[c, start:start+hop]``, window into ``frame``."""
    win_len = window.shape[0]
    keep = win_len - hop
    for i in range(keep):
        inbuf[c, i] = inbuf[c, i + hop]
    for i in range(hop):
        inbuf[c, keep + i] = x[c, start + i]
    for i in range(win_len):
        frame[i] = inbuf[c, i] * window[i] * scale


@njit(cache=True, nogil=True, inline="always")
def overlap_add(y, window, ola, c, out, start, hop):
    """Window the synthesised frame ``y``; emit one hop into ``out[c, start:]``; keep the tail in ``ola``."""
    win_len = window.shape[0]
    keep = win_len - hop
    for i in range(hop):
        out[c, start + i] = ola[c, i] + y[i] * window[i]
    for i in range(keep):
        tail = ola[c, i + hop] if i + hop < keep else 0.0
        ola[c, i] = tail + y[i + hop] * window[i + hop]
