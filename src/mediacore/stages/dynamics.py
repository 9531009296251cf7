"""Gain, Limiter and AGC stages."""

from __future__ import annotations

import math

import numpy as np

from ..dsp import dynamics as k
from ..stage import Stage, check_sample_rate, check_range


class Gain(Stage):
    """Fixed gain in dB.  Changing ``gain_db`` ramps over the next block (no click).

    Channels share the gain; latency 0.
    """

    def __init__(self, *, sample_rate: int, gain_db: float = 0.0, num_channels: int | None = None) -> None:
        sample_rate = check_sample_rate("Gain", sample_rate)
        self._gain_db = check_range("Gain", "gain_db", gain_db, -120.0, 120.0)
        super().__init__(sample_rate=sample_rate, num_channels=num_channels)

    @property
    def gain_db(self) -> float:
        return self._gain_db

    @gain_db.setter
    def gain_db(self, value: float) -> None:
        self._gain_db = check_range("Gain", "gain_db", value, -120.0, 120.0)

    def _params(self):
        return {"gain_db": self._gain_db}

    def _allocate(self, num_channels: int) -> None:
        self._applied = np.full(num_channels, 10.0 ** (self._gain_db / 20.0))

    def _process_blocks(self, x, meta):
        target = np.full(x.shape[0], 10.0 ** (self._gain_db / 20.0))
        out = np.empty_like(x)
        if x.shape[1] == 0:
            return out
        if np.array_equal(target, self._applied):
            np.multiply(x, np.float32(target[0]), out=out)
        else:
            k.apply_gain_ramp(x, out, self._applied, target)
            self._applied = target
        return out


class Limiter(Stage):
    """Look-ahead peak limiter: no output sample exceeds ``ceiling_dbfs``.

    Parameters
    ----------
    ceiling_dbfs : float, default -1
    lookahead_ms : float, default 1.0
        Also the latency.  The gain reaches its minimum over this span before
        a peak arrives, so limiting adds no hard edges.
    release_ms : float, default 60
        Time constant of the gain's recovery.

    Channels are limited independently.
    """

    def __init__(self, *, sample_rate: int, ceiling_dbfs: float = -1.0, lookahead_ms: float = 1.0,
                 release_ms: float = 60.0, num_channels: int | None = None) -> None:
        sample_rate = check_sample_rate("Limiter", sample_rate)
        self.ceiling_dbfs = check_range("Limiter", "ceiling_dbfs", ceiling_dbfs, -60.0, 0.0)
        self.lookahead_ms = check_range("Limiter", "lookahead_ms", lookahead_ms, 0.0, 50.0)
        self.release_ms = check_range("Limiter", "release_ms", release_ms, 1.0, 5000.0)
        self._look = int(round(self.lookahead_ms * sample_rate / 1000.0))
        self._ceiling = 10.0 ** (self.ceiling_dbfs / 20.0)
        self._release = 1.0 - math.exp(-1.0 / (self.release_ms * sample_rate / 1000.0))
        super().__init__(sample_rate=sample_rate, num_channels=num_channels)

    @property
    def latency(self) -> int:
        return self._look

    def _params(self):
        return {"ceiling_dbfs": self.ceiling_dbfs, "lookahead_ms": self.lookahead_ms, "release_ms": self.release_ms}

    def _allocate(self, num_channels: int) -> None:
        span = self._look + 1
        self._delay = np.zeros((num_channels, max(self._look, 1)))[:, : self._look]
        self._need = np.ones((num_channels, span))
        self._smin = np.ones((num_channels, span))
        self._pos = np.zeros((num_channels, 2), np.int64)
        self._env = np.ones(num_channels)
        self._box = np.full(num_channels, float(span))
        self._since_over = np.full(num_channels, span, np.int64)

    def _limit(self, x, out):
        k.limiter_inplace(x, out, self._ceiling, self._release, self._delay, self._need, self._smin,
                          self._pos, self._env, self._box, self._since_over)
        return out

    def _process_blocks(self, x, meta):
        return self._limit(x, np.empty_like(x))


class AGC(Stage):
    """Automatic gain control toward a target speech level, then a limiter.

    The speech level is estimated on speech blocks only: from ``meta["speech"]``
    when a VAD runs earlier in the pipeline, else from a level gate 10 dB
    above a tracked level floor.  The gain follows ``target - level`` at no
    more than ``max_gain_change_db_per_s``, never exceeds ``max_gain_db``, and
    never lifts the noise (level of non-speech blocks) above
    ``max_noise_level_dbfs``.  A look-ahead limiter at ``ceiling_dbfs``
    follows, so the output never clips.

    Parameters
    ----------
    target_level_dbfs : float, default -23
        Wanted speech level (mean power of speech blocks, dBFS).
    max_gain_db : float, default 30
    min_gain_db : float, default -20
    max_gain_change_db_per_s : float, default 15
    max_noise_level_dbfs : float, default -50
    level_time_constant_ms : float, default 2000
        After the first second of speech (a plain average), the level is an
        exponential average with this time constant.
    ceiling_dbfs, lookahead_ms, release_ms
        The limiter's (see :class:`Limiter`); ``lookahead_ms`` is the latency.

    Channels are independent streams.  Side result: ``meta["gain_db"]``
    (channels, blocks).
    """

    def __init__(self, *, sample_rate: int, target_level_dbfs: float = -23.0, max_gain_db: float = 30.0,
                 min_gain_db: float = -20.0, max_gain_change_db_per_s: float = 15.0,
                 max_noise_level_dbfs: float = -50.0, level_time_constant_ms: float = 2000.0,
                 ceiling_dbfs: float = -1.0, lookahead_ms: float = 1.0, release_ms: float = 60.0,
                 num_channels: int | None = None) -> None:
        sample_rate = check_sample_rate("AGC", sample_rate)
        self.target_level_dbfs = check_range("AGC", "target_level_dbfs", target_level_dbfs, -60.0, 0.0)
        self.max_gain_db = check_range("AGC", "max_gain_db", max_gain_db, 0.0, 60.0)
        self.min_gain_db = check_range("AGC", "min_gain_db", min_gain_db, -60.0, 0.0)
        self.max_gain_change_db_per_s = check_range("AGC", "max_gain_change_db_per_s", max_gain_change_db_per_s,
                                                    0.1, 200.0)
        self.max_noise_level_dbfs = check_range("AGC", "max_noise_level_dbfs", max_noise_level_dbfs, -120.0, 0.0)
        self.level_time_constant_ms = check_range("AGC", "level_time_constant_ms", level_time_constant_ms,
                                                  10.0, 60000.0)
        self.block_size = sample_rate // 100
        p = np.zeros(k.N_AGC_PARAMS)
        p[k.A_TARGET_DB] = self.target_level_dbfs
        p[k.A_MAX_GAIN_DB] = self.max_gain_db
        p[k.A_MIN_GAIN_DB] = self.min_gain_db
        p[k.A_STEP_DB] = self.max_gain_change_db_per_s / 100.0
        p[k.A_LEVEL_ALPHA] = math.exp(-10.0 / self.level_time_constant_ms)
        p[k.A_NOISE_ALPHA] = math.exp(-10.0 / 500.0)
        p[k.A_MAX_NOISE_DB] = self.max_noise_level_dbfs
        p[k.A_GATE_DB] = 10.0
        p[k.A_MIN_SPEECH_DB] = -60.0
        p[k.A_WARMUP_BLOCKS] = 100.0
        self._p = p
        self._limiter = Limiter(sample_rate=sample_rate, ceiling_dbfs=ceiling_dbfs, lookahead_ms=lookahead_ms,
                                release_ms=release_ms)
        super().__init__(sample_rate=sample_rate, num_channels=num_channels)

    @property
    def latency(self) -> int:
        return self._limiter.latency

    def _params(self):
        return {"target_level_dbfs": self.target_level_dbfs, "max_gain_db": self.max_gain_db,
                "max_gain_change_db_per_s": self.max_gain_change_db_per_s,
                "max_noise_level_dbfs": self.max_noise_level_dbfs, "ceiling_dbfs": self._limiter.ceiling_dbfs}

    def _allocate(self, num_channels: int) -> None:
        self._level = np.zeros(num_channels)
        self._noise = np.zeros(num_channels)
        self._n_speech = np.zeros(num_channels, np.int64)
        self._floor_db = np.full(num_channels, np.inf)
        self._gain = np.zeros(num_channels)
        self._limiter.reset()
        self._limiter._allocate(num_channels)

    def _process_blocks(self, x, meta):
        n_blocks = x.shape[1] // self.block_size
        speech = meta.get("speech")
        if speech is not None and speech.shape == (x.shape[0], n_blocks):
            flags = speech.astype(np.int8)
        else:
            flags = np.full((x.shape[0], n_blocks), -1, np.int8)
        out = np.empty_like(x)
        gain_db = np.empty((x.shape[0], n_blocks), np.float32)
        k.agc_blocks(x, out, self.block_size, flags, self._level, self._noise, self._floor_db, self._n_speech,
                     self._gain, self._p, gain_db)
        meta["gain_db"] = gain_db
        return self._limiter._limit(out, out)  # in place
