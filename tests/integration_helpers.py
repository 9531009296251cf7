"""Shared measurements for the host-integration tests: alignment, SI-SDR, noise floor."""

from __future__ import annotations

import socket

import numpy as np

from signals import example, lag_of, level_db, speech_mask


def si_sdr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    ref = np.asarray(reference, np.float64)
    est = np.asarray(estimate, np.float64)
    a = np.dot(est, ref) / np.dot(ref, ref)
    err = est - a * ref
    return float(10 * np.log10(np.sum((a * ref) ** 2) / np.sum(err ** 2)))


def mag_snr_db(reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> float:
    """SNR of STFT magnitudes (20 ms frames, best scalar gain): blind to phase, so it can be compared
    across lossy codecs and IIR filters, where SI-SDR mostly measures phase and a few samples of lag."""
    from scipy.signal import stft

    n = min(len(reference), len(estimate))
    seg = sample_rate // 50
    r = np.abs(stft(np.asarray(reference[:n], np.float64), nperseg=seg, noverlap=seg // 2)[2])
    e = np.abs(stft(np.asarray(estimate[:n], np.float64), nperseg=seg, noverlap=seg // 2)[2])
    g = np.sum(r * e) / np.sum(e * e)
    return float(10 * np.log10(np.sum(r ** 2) / np.sum((r - g * e) ** 2)))


def speech_to_pause_db(clean: np.ndarray, x: np.ndarray, sample_rate: int) -> float:
    """Level of ``x`` where ``clean`` has speech minus its level in the pauses (higher = less noise)."""
    m = speech_mask(clean, sample_rate // 100, below_peak_db=40.0)
    return level_db(x[m]) - level_db(x[~m])


def denoise_gains(out: np.ndarray, *, sample_rate: int, delay: int | None = None, max_lag: int = 4800,
                  skip_s: float = 0.5, noisy: np.ndarray | None = None, noisy_delay: int = 0,
                  refine: int = 0) -> dict[str, float]:
    """Align ``out`` (mono, produced from the bundled noisy example) and score it against the clean one.

    Returns the found ``lag`` (samples) and the gains in SI-SDR and speech-to-pause level (dB) over
    the noisy input: the bundled clip, or ``noisy`` (what the adapter was handed, e.g. after a codec),
    lagging the clip by ``noisy_delay``.  The first ``skip_s`` seconds (settling) are left out.
    ``refine`` > 0 lets each signal take its best SI-SDR lag within that many samples (a lossy codec
    shifts phase, and SI-SDR is sensitive to a few samples at 48 kHz).
    """
    clean = example("clean", sample_rate)
    if noisy is None:
        noisy = example("noisy", sample_rate)
    lag = lag_of(example("noisy", sample_rate), out, max_lag) if delay is None else delay
    s = int(skip_s * sample_rate)
    n = min(len(clean), len(out) - lag - refine, len(noisy) - noisy_delay - refine) - refine

    def best(sig, at):
        return max(range(at - refine, at + refine + 1), key=lambda L: si_sdr_db(clean[s:n], sig[L + s: L + n]))

    lag = best(out, lag)
    noisy_delay = best(noisy, noisy_delay)
    c, x, y = clean[s:n], noisy[noisy_delay + s: noisy_delay + n], out[lag + s: lag + n]
    return {
        "lag": lag,
        "si_sdr_gain_db": si_sdr_db(c, y) - si_sdr_db(c, x),
        "mag_snr_gain_db": mag_snr_db(c, y, sample_rate) - mag_snr_db(c, x, sample_rate),
        "pause_gain_db": speech_to_pause_db(c, y, sample_rate) - speech_to_pause_db(c, x, sample_rate),
    }


def to_int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 32768.0), -32768, 32767).astype(np.int16)


def free_udp_port_pair(host: str = "127.0.0.1") -> int:
    """An even UDP port P with P and P + 1 both free (RTP and RTCP)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((host, 0))
            p = s.getsockname()[1] & ~1
        try:
            a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                a.bind((host, p))
                b.bind((host, p + 1))
                return p
            finally:
                a.close()
                b.close()
        except OSError:
            continue
    raise RuntimeError("no free UDP port pair on 127.0.0.1")
