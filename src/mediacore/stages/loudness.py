"""Loudness (ITU-R BS.1770-4 / EBU R 128): meter, true-peak limiter, normaliser."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..dsp import loudness as k
from ..dsp.iir import sosfilt_inplace
from ..errors import FormatError
from ..frame import as_float_block, check_layout
from ..stage import Stage, check_range, check_sample_rate


@dataclass(frozen=True)
class LoudnessMeasurement:
    """BS.1770 measurement of one stream (all channels together)."""

    integrated_lufs: float  #: gated integrated loudness; -inf for silence / under 400 ms
    true_peak_dbtp: float  #: 4x-oversampled peak over all channels, dB true peak
    sample_peak_dbfs: float
    duration_s: float


def _db(v: float) -> float:
    return 20.0 * math.log10(v) if v > 0 else -math.inf


class LoudnessMeter(Stage):
    """Pass-through stage that measures integrated loudness and true peak.

    Output == input (latency 0).  :meth:`measurement` (and
    :attr:`integrated_lufs`) give the values so far; ``flush`` and ``run``
    (end of stream) keep the stream's final values in :attr:`last`, and
    ``measurement()`` returns them until the next stream's first samples
    arrive, so a reading survives ``run()``.  ``reset()`` forgets them.
    ``meta["momentary_lufs"]`` is
    the momentary loudness (the last 400 ms block) at the end of each chunk;
    the integrated value is computed on demand, not per chunk (it gates
    over the whole stream).

    Channel weights follow BS.1770 (1.41 for the 5.1 surrounds, LFE left out).
    """

    def __init__(self, *, sample_rate: int, num_channels: int | None = None) -> None:
        sample_rate = check_sample_rate("LoudnessMeter", sample_rate)
        self._sos = k.k_weighting_sos(sample_rate)
        self._hop = int(round(k.HOP_S * sample_rate))
        self._taps = k.true_peak_taps()
        super().__init__(sample_rate=sample_rate, num_channels=num_channels)

    def reset(self) -> None:
        #: the final values of the last stream that ended (flush or run); None before that
        self.last: LoudnessMeasurement | None = None
        super().reset()

    def _allocate(self, num_channels: int) -> None:
        self._zi = np.zeros((num_channels, 2, 2))
        self._weights = k.channel_weights(num_channels)
        self._acc = np.zeros(1)
        self._count = np.zeros(1, np.int64)
        self._hops: list[np.ndarray] = []
        self._recent = np.zeros(0)  # the last four hop powers (momentary loudness)
        self._tp_hist = np.zeros((num_channels, k.TAPS_PER_PHASE - 1))
        self._tp = np.zeros(num_channels)
        self._sample_peak = 0.0

    def _process_blocks(self, x: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
        if x.shape[1]:
            kx = np.empty(x.shape)
            sosfilt_inplace(x, self._sos, self._zi, kx)
            out = np.empty(x.shape[1] // self._hop + 1)
            n = k.hop_powers(kx, self._weights, self._hop, self._acc, self._count, out)
            if n:
                self._hops.append(out[:n])
                self._recent = np.concatenate([self._recent, out[:n]])[-4:]
            k.true_peak_update(x, self._taps, self._tp_hist, self._tp)
            self._sample_peak = max(self._sample_peak, float(np.abs(x).max()))
            if self._recent.size == 4:
                p = float(self._recent.mean())
                meta["momentary_lufs"] = k.OFFSET_DB + 10.0 * np.log10(p) if p > 0 else -math.inf
        return x

    @property
    def integrated_lufs(self) -> float:
        """Integrated loudness of :meth:`measurement`."""
        return self.measurement().integrated_lufs

    def measurement(self) -> LoudnessMeasurement:
        """Values of the stream so far (the last few true-peak samples are in
        the interpolator until the stream is flushed); between the end of a
        stream (``flush`` / ``run``) and the next samples, that stream's final
        values (:attr:`last`)."""
        if self._n_in == 0 and self.last is not None:
            return self.last
        if self._channels is None:
            return LoudnessMeasurement(-math.inf, -math.inf, -math.inf, 0.0)
        lufs = k.gated_loudness(np.concatenate(self._hops)) if self._hops else -math.inf
        return LoudnessMeasurement(lufs, _db(float(self._tp.max())), _db(self._sample_peak),
                                   self._n_in / self._sample_rate)

    def _flush(self) -> np.ndarray:
        if self._channels is not None:
            # the interpolator's tail: the last samples' inter-sample values
            k.true_peak_update(np.zeros((self._channels, k.TP_DELAY)), self._taps, self._tp_hist, self._tp)
        final = self.measurement()
        y = super()._flush()  # resets the stream (and ``last``)
        self.last = final
        return y


def measure_loudness(samples: Any, sample_rate: int) -> LoudnessMeasurement:
    """One-shot BS.1770 measurement of ``samples`` ((channels, n) or (n,))."""
    meter = LoudnessMeter(sample_rate=sample_rate)
    meter.process(samples)  # the meter checks the samples (a transposed array is refused)
    meter.flush()
    return meter.last


class TruePeakLimiter(Stage):
    """Look-ahead limiter on the 4x-oversampled (true) peak.

    No interpolated output value exceeds ``ceiling_dbtp`` (measured with the
    same 4x interpolator; BS.1770 meters agree within about 0.1 dB).  The
    gain reaches its floor over ``lookahead_ms`` before a peak, so limiting
    adds no hard edges, and recovers with time constant ``release_ms``.

    Parameters
    ----------
    ceiling_dbtp : float, default -1
    lookahead_ms : float, default 1.5
    release_ms : float, default 100
    gain_db : float, default 0
        Applied before the limiter (``LoudnessNormalize`` uses it).

    Latency: 6 samples (interpolator) + the look-ahead.  Channels are
    limited independently.
    """

    def __init__(self, *, sample_rate: int, ceiling_dbtp: float = -1.0, lookahead_ms: float = 1.5,
                 release_ms: float = 100.0, gain_db: float = 0.0, num_channels: int | None = None) -> None:
        owner = type(self).__name__
        sample_rate = check_sample_rate(owner, sample_rate)
        self.ceiling_dbtp = check_range(owner, "ceiling_dbtp", ceiling_dbtp, -60.0, 0.0)
        self.lookahead_ms = check_range(owner, "lookahead_ms", lookahead_ms, 0.1, 50.0)
        self.release_ms = check_range(owner, "release_ms", release_ms, 1.0, 5000.0)
        self._gain_db = check_range(owner, "gain_db", gain_db, -60.0, 60.0)
        self._look = max(1, int(round(self.lookahead_ms * sample_rate / 1000.0)))
        self._ceiling = 10.0 ** (self.ceiling_dbtp / 20.0)
        self._release = 1.0 - math.exp(-1.0 / (self.release_ms * sample_rate / 1000.0))
        self._taps = k.true_peak_taps()
        super().__init__(sample_rate=sample_rate, num_channels=num_channels)

    @property
    def latency(self) -> int:
        return k.TP_DELAY + self._look

    def _params(self) -> dict[str, Any]:
        p = {"ceiling_dbtp": self.ceiling_dbtp, "lookahead_ms": self.lookahead_ms, "release_ms": self.release_ms}
        if self._gain_db:
            p["gain_db"] = self._gain_db
        return p

    def _allocate(self, num_channels: int) -> None:
        span = self._look + 1
        self._hist = np.zeros((num_channels, k.TAPS_PER_PHASE - 1 + self._look))
        self._rring = np.ones((num_channels, span))
        self._mring = np.ones((num_channels, span))
        self._pos = np.zeros(num_channels, np.int64)
        self._msum = np.full(num_channels, float(span))
        self._g = np.ones(num_channels)
        self._since = np.full(num_channels, 10 * span, np.int64)

    def _process_blocks(self, x: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
        out = np.empty_like(x)
        if x.shape[1]:
            k.true_peak_limit(x, out, self._taps, 10.0 ** (self._gain_db / 20.0), self._ceiling, self._release,
                              self._hist, self._rring, self._mring, self._pos, self._msum, self._g, self._since)
            meta["limiter_gain_db"] = 20.0 * np.log10(np.maximum(self._g, 1e-12))
        return out


class LoudnessNormalize(TruePeakLimiter):
    """Bring a stream to ``target_lufs`` integrated loudness (BS.1770), with a
    true-peak ceiling.

    Integrated loudness is a property of the whole stream, so the gain is
    ``target_lufs - measured_lufs`` with ``measured_lufs`` known in advance
    (from :class:`LoudnessMeter` or :func:`measure_loudness` on a first
    pass; ``mediacore clean --loudness`` does the two passes).  ``run()``
    measures the input itself when ``measured_lufs`` is None.  The gain is
    at most ``max_gain_db``; a silent stream (-inf LUFS) is left at gain 0.
    Peaks the gain pushes above ``true_peak_dbtp`` are limited, which can
    leave the result slightly below the target (reported by the meter).

    Parameters
    ----------
    target_lufs : float, default -23 (EBU R 128; -16 is common for podcasts)
    true_peak_dbtp : float, default -1
    measured_lufs : float or None
    max_gain_db : float, default 30
    """

    def __init__(self, *, sample_rate: int, target_lufs: float = -23.0, true_peak_dbtp: float = -1.0,
                 measured_lufs: float | None = None, max_gain_db: float = 30.0, lookahead_ms: float = 1.5,
                 release_ms: float = 100.0, num_channels: int | None = None) -> None:
        self.target_lufs = check_range("LoudnessNormalize", "target_lufs", target_lufs, -70.0, 0.0)
        self.max_gain_db = check_range("LoudnessNormalize", "max_gain_db", max_gain_db, 0.0, 60.0)
        if measured_lufs is not None and measured_lufs != -math.inf:
            measured_lufs = check_range("LoudnessNormalize", "measured_lufs", measured_lufs, -150.0, 20.0)
        self.measured_lufs = measured_lufs
        super().__init__(sample_rate=sample_rate, ceiling_dbtp=true_peak_dbtp, lookahead_ms=lookahead_ms,
                         release_ms=release_ms, gain_db=self._gain_for(measured_lufs), num_channels=num_channels)

    def _gain_for(self, measured: float | None) -> float:
        if measured is None or not math.isfinite(measured):
            return 0.0
        return float(np.clip(self.target_lufs - measured, -60.0, self.max_gain_db))

    @property
    def gain_db(self) -> float:
        return self._gain_db

    def _params(self) -> dict[str, Any]:
        return {"target_lufs": self.target_lufs, "true_peak_dbtp": self.ceiling_dbtp,
                "measured_lufs": self.measured_lufs, "max_gain_db": self.max_gain_db,
                "lookahead_ms": self.lookahead_ms, "release_ms": self.release_ms}

    def _push(self, x: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
        if self.measured_lufs is None and x.shape[1]:
            raise FormatError(
                "LoudnessNormalize: expected measured_lufs (the stream's integrated loudness) for streaming, "
                "got None; measure a first pass with LoudnessMeter, or use run() on the whole signal")
        return super()._push(x, meta)

    def run(self, samples: Any) -> np.ndarray:
        if self.measured_lufs is not None:
            return super().run(samples)
        x = as_float_block(samples, self.name)
        check_layout(self.name, x.shape, self._declared_channels)  # before the measuring pass
        self.measured_lufs = measure_loudness(x, self._sample_rate).integrated_lufs
        self._gain_db = self._gain_for(self.measured_lufs)
        try:
            y = super().run(x)
        finally:
            self.measured_lufs = None
            self._gain_db = 0.0
        return y[0] if np.ndim(samples) == 1 else y
