"""Denoise: noise suppression stage with selectable backends."""

from __future__ import annotations

import numpy as np

from ..dsp import spectral
from ..errors import ParameterError
from ..stage import Stage, check_sample_rate, check_choice, check_range

DSP_RATES = (8000, 16000, 24000, 32000, 48000)


class _SpectralBackend:
    """Classical STFT suppressor (see :mod:`mediacore.dsp.spectral`): 10 ms hop."""

    def __init__(self, sample_rate: int, max_attenuation_db: float, coarse_above_hz: float,
                 overlap: int, highpass_hz: float | None) -> None:
        self.hop = sample_rate // 100
        self.win_len = overlap * self.hop
        self.window = spectral.sqrt_hann(self.win_len, overlap)
        n_bins = self.win_len // 2 + 1
        bin_hz = sample_rate / self.win_len
        self.edges = spectral.unit_edges(n_bins, bin_hz, coarse_above_hz)
        n_fine = int(np.sum(np.diff(self.edges) == 1))
        freqs = np.arange(n_bins) * bin_hz
        if highpass_hz:
            # 4th-order Butterworth magnitude, applied zero-phase inside the STFT
            self.shaping = 1.0 / np.sqrt(1.0 + (highpass_hz / np.maximum(freqs, 1e-9)) ** 8)
        else:
            self.shaping = np.ones(n_bins)
        g_floor = 10.0 ** (-max_attenuation_db / 20.0)
        p = np.zeros(spectral.N_PARAMS)
        p[spectral.P_ALPHA_NOISE] = 0.85
        p[spectral.P_ALPHA_DD] = 0.98
        p[spectral.P_XI_H1] = 10.0 ** (15.0 / 10.0)
        p[spectral.P_XI_MIN] = max(g_floor ** 2, 10.0 ** (-40.0 / 10.0))
        p[spectral.P_GAIN_FLOOR] = g_floor
        p[spectral.P_SPP_LO] = min(int(300 / bin_hz), n_fine)
        p[spectral.P_SPP_HI] = min(int(4000 / bin_hz) + 1, n_fine)
        p[spectral.P_MIN_BIAS] = 3.0
        p[spectral.P_ZETA_MIN] = 10.0 ** (-10.0 / 10.0)
        p[spectral.P_ZETA_MAX] = 10.0 ** (-5.0 / 10.0)
        p[spectral.P_Q_MAX] = 0.95
        p[spectral.P_SPEECH_FLOOR] = 10.0 ** (-12.0 / 20.0)
        p[spectral.P_FRAME_LO_DB] = 0.0
        p[spectral.P_FRAME_HI_DB] = 10.0
        p[spectral.P_N_FINE] = n_fine
        self.params = p

    def allocate(self, c: int) -> None:
        n_units = len(self.edges) - 1
        self.inbuf = np.zeros((c, self.win_len))
        self.ola = np.zeros((c, self.win_len - self.hop))
        self.state = np.zeros((c, spectral.N_STATE, n_units))
        self.win_min = np.zeros((c, n_units, spectral.N_SUBWIN))
        self.n_frames = np.zeros(c, np.int64)

    def process(self, x: np.ndarray, speech_prob: np.ndarray) -> np.ndarray:
        out = np.empty_like(x)
        spectral.denoise_blocks(x, out, self.hop, self.inbuf, self.ola, self.state, self.win_min, self.n_frames,
                                self.window, self.edges, self.shaping, self.params, speech_prob)
        return out


class Denoise(Stage):
    """Noise suppression.

    Parameters
    ----------
    sample_rate : int
        ``dsp``: 8000, 16000, 24000, 32000 or 48000 (10 ms hops).
    backend : {"dsp"}
        ``dsp``: MMSE-LSA gains with a speech-presence noise tracker, in numba;
        latency 10 ms.
    max_attenuation_db : float, default 25
        Suppression strength: the most a time-frequency bin is turned down.
        0 leaves the signal unchanged (but delayed).
    coarse_above_hz : float, default 8000
        Above this, bins share one gain per 1 kHz band.
    highpass_hz : float or None, default None
        Also remove content below this frequency (4th-order Butterworth
        magnitude, applied to the spectral gain).  Unlike the HighPass stage
        this is zero-phase, so waveform metrics such as SI-SDR see no phase
        shift in the low speech band, and it costs nothing extra.  The 20 ms
        window's 50 Hz bins limit its slope: about 20 dB down at 30 Hz and
        12 dB at 50 Hz (stationary hum is then removed as noise); use the
        HighPass stage for a steeper cut.
    window_ms : {20, 30, 40}, default 20
        STFT window (hop 10 ms).  Longer windows resolve harmonics better and
        add latency: latency = window - 10 ms.
    num_channels : int, optional
        Channels are independent streams.

    Side results: ``meta["speech_prob"]`` (channels, blocks), the mean
    OM-LSA speech-presence probability between 300 Hz and 4 kHz per 10 ms
    block (written only if no earlier stage wrote it).
    """

    BACKENDS = ("dsp",)

    def __init__(self, *, sample_rate: int, backend: str = "dsp", max_attenuation_db: float = 25.0,
                 coarse_above_hz: float = 8000.0, highpass_hz: float | None = None, window_ms: int = 20,
                 num_channels: int | None = None) -> None:
        sample_rate = check_sample_rate("Denoise", sample_rate)
        self.backend = check_choice("Denoise", "backend", backend, self.BACKENDS)
        self.max_attenuation_db = check_range("Denoise", "max_attenuation_db", max_attenuation_db, 0.0, 80.0)
        self.coarse_above_hz = check_range("Denoise", "coarse_above_hz", coarse_above_hz, 0.0, 1e6)
        if sample_rate not in DSP_RATES:
            raise ParameterError(
                f"Denoise: expected sample_rate in {DSP_RATES}, got {sample_rate} (insert Resample first)")
        self.window_ms = check_choice("Denoise", "window_ms", window_ms, (20, 30, 40))
        self.highpass_hz = None if highpass_hz is None else check_range(
            "Denoise", "highpass_hz", highpass_hz, 1.0, 0.45 * sample_rate)
        self._impl = _SpectralBackend(sample_rate, self.max_attenuation_db, self.coarse_above_hz,
                                      overlap=self.window_ms // 10, highpass_hz=self.highpass_hz)
        self.block_size = self._impl.hop
        super().__init__(sample_rate=sample_rate, num_channels=num_channels)

    @property
    def latency(self) -> int:
        return self._impl.win_len - self._impl.hop

    def _params(self):
        return {"backend": self.backend, "max_attenuation_db": self.max_attenuation_db,
                "highpass_hz": self.highpass_hz, "window_ms": self.window_ms}

    def _allocate(self, num_channels: int) -> None:
        self._impl.allocate(num_channels)

    def _process_blocks(self, x, meta):
        prob = np.empty((x.shape[0], x.shape[1] // self.block_size), np.float32)
        y = self._impl.process(x, prob)
        meta.setdefault("speech_prob", prob)
        return y
