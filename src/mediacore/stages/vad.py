"""VAD: voice activity detection that passes the audio through unchanged."""

from __future__ import annotations

import numpy as np

from ..dsp.vad import energy_speech_prob, hangover_decision
from ..errors import MissingDependencyError, ParameterError
from ..stage import Stage, check_sample_rate, check_choice, check_range

WEBRTC_RATES = (8000, 16000, 32000, 48000)
NEURAL_RATES = (16000, 48000)
#: meta key under which Denoise(backend="neural") leaves its model's speech probability
NEURAL_PROB_KEY = "neural_speech_prob"


class VAD(Stage):
    """Per-10-ms speech detection; audio passes through untouched (latency 0).

    Parameters
    ----------
    sample_rate : int
    backend : {"webrtc", "energy", "neural"}
        ``webrtc``: the WebRTC GMM detector (``webrtcvad`` module; 8, 16, 32
        or 48 kHz).  ``energy``: block level above a tracked noise floor
        (numba; any rate that is a multiple of 100 Hz).  ``neural``: the
        speech-probability output of the neural denoiser's model (16 or
        48 kHz).  Placed after ``Denoise(backend="neural")`` in a pipeline it
        reads the probability that stage already computed
        (``meta["neural_speech_prob"]``: no second inference; that probability
        is from the denoiser's input, 10 ms ahead of the audio the VAD sees);
        anywhere else it runs the model on its own input (then the probability
        lags that input by the model's look-ahead: 10 ms for the shipped model).
    mode : int, default 2
        ``webrtc`` aggressiveness, 0 (keeps most) to 3 (drops most).
    threshold_db : float, default 9
        ``energy``: level above the noise floor at which the probability is 0.5.
    hangover_ms : float, default 200
        A speech decision is held this long after the probability drops.
    num_channels : int, optional
        Channels are independent streams.

    Side results, per 10 ms block, shape (channels, blocks):
    ``meta["speech_prob"]`` (float32, smoothed) and ``meta["speech"]`` (bool,
    with hangover).
    """

    BACKENDS = ("webrtc", "energy", "neural")

    def __init__(self, *, sample_rate: int, backend: str = "webrtc", mode: int = 2, threshold_db: float = 9.0,
                 hangover_ms: float = 200.0, num_channels: int | None = None) -> None:
        sample_rate = check_sample_rate("VAD", sample_rate)
        self.backend = check_choice("VAD", "backend", backend, self.BACKENDS)
        self.mode = check_choice("VAD", "mode", mode, (0, 1, 2, 3))
        self.threshold_db = check_range("VAD", "threshold_db", threshold_db, 0.0, 60.0)
        self.hangover_ms = check_range("VAD", "hangover_ms", hangover_ms, 0.0, 5000.0)
        if sample_rate % 100:
            raise ParameterError(f"VAD: expected a sample_rate that is a multiple of 100 Hz, got {sample_rate}")
        if backend == "webrtc":
            if sample_rate not in WEBRTC_RATES:
                raise ParameterError(
                    f"VAD: backend 'webrtc' expects sample_rate in {WEBRTC_RATES}, got {sample_rate} "
                    "(insert Resample first, or use backend='energy')")
            try:
                import webrtcvad
            except ImportError as exc:  # pragma: no cover - a core dependency
                raise MissingDependencyError("VAD: backend 'webrtc' needs webrtcvad: pip install webrtcvad-wheels") from exc
            self._webrtcvad = webrtcvad
        if backend == "neural" and sample_rate not in NEURAL_RATES:
            raise ParameterError(f"VAD: backend 'neural' expects sample_rate in {NEURAL_RATES}, got {sample_rate} "
                                 "(insert Resample first)")
        self._model = None  # the neural backend's own model, built on first use without an upstream one
        self.block_size = sample_rate // 100
        self._hang_blocks = int(round(self.hangover_ms / 10.0))
        super().__init__(sample_rate=sample_rate, num_channels=num_channels)

    def _params(self):
        p = {"backend": self.backend, "hangover_ms": self.hangover_ms}
        if self.backend != "neural":
            p.update({"mode": self.mode} if self.backend == "webrtc" else {"threshold_db": self.threshold_db})
        return p

    def _allocate(self, num_channels: int) -> None:
        self._p_state = np.zeros(num_channels)
        self._hang = np.zeros(num_channels, np.int64)
        if self.backend == "webrtc":
            self._vads = [self._webrtcvad.Vad(self.mode) for _ in range(num_channels)]
        elif self.backend == "energy":
            self._floor_db = np.full(num_channels, np.inf)
        elif self._model is not None:
            self._model.allocate(num_channels)

    def _raw_prob(self, x: np.ndarray, meta) -> np.ndarray:
        n_ch, n = x.shape
        bs = self.block_size
        raw = np.empty((n_ch, n // bs))
        if self.backend == "neural":
            upstream = meta.get(NEURAL_PROB_KEY)
            if upstream is not None and upstream.shape == raw.shape:
                raw[...] = upstream
            else:
                self._model_prob(x, raw)
        elif self.backend == "webrtc":
            pcm = (np.clip(x, -1.0, 32767 / 32768) * 32768.0).astype(np.int16)
            for c, vad in enumerate(self._vads):
                row = pcm[c]
                for b in range(n // bs):
                    raw[c, b] = vad.is_speech(row[b * bs:(b + 1) * bs].tobytes(), self.sample_rate)
        else:
            # floor rises 3 dB/s; probability slope 2 dB; blocks below -70 dBFS are silence
            energy_speech_prob(x, bs, self._floor_db, 0.03, self.threshold_db, 2.0, -70.0, raw)
        return raw

    def _model_prob(self, x: np.ndarray, raw: np.ndarray) -> None:
        if self._model is None:
            from ..neural.backend import NeuralBackend

            self._model = NeuralBackend(self.sample_rate, 0.0, None)
            self._model.allocate(x.shape[0])
        prob = np.empty(raw.shape, np.float32)
        self._model.process(x, prob)  # (the suppressed audio is not used)
        raw[...] = prob

    def _process_blocks(self, x, meta):
        raw = self._raw_prob(x, meta)
        prob = np.empty(raw.shape, np.float32)
        speech = np.empty(raw.shape, np.bool_)
        hangover_decision(raw, 0.8, self._hang_blocks, 0.3, prob, speech, self._p_state, self._hang)
        meta["speech_prob"] = prob
        meta["speech"] = speech
        return x
