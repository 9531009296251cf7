"""pipecat: an input audio filter and a VAD analyzer backed by mediacore.

::

    from pipecat.processors.audio.vad_processor import VADProcessor
    from pipecat.transports.base_transport import TransportParams
    from mediacore.integrations.pipecat import MediacoreFilter, MediacoreVADAnalyzer

    params = TransportParams(audio_in_enabled=True,
                             audio_in_filter=MediacoreFilter())          # denoise before VAD and STT
    vad = VADProcessor(vad_analyzer=MediacoreVADAnalyzer())              # after transport.input() in the Pipeline

:class:`MediacoreFilter` gets ``start(sample_rate)`` from the transport, then
``filter(audio)`` for every input chunk (int16 interleaved bytes, any length);
it returns exactly as many bytes, the audio delayed by the pipeline latency
(``delay_ms``, emitted as leading silence), so pipecat's frame timing and
byte counts stay as they are.  A new ``start`` with another rate restarts the
stream on a pipeline for that rate.  ``FilterEnableFrame`` switches it on and
off; ``FilterUpdateSettingsFrame`` takes default-chain options
(``{"max_attenuation_db": 30, "agc": False}``) and rebuilds the pipeline.

:class:`MediacoreVADAnalyzer` scores speech per 10 ms with our VAD stage on
denoised audio (by default), so pipecat's start/stop state machine sees
noise-robust confidences.
"""

from __future__ import annotations

import inspect
from concurrent.futures import Executor
from typing import Any

import numpy as np

from ..chain import default_chain, working_rate
from ..errors import ParameterError
from ..frame import AudioFrame
from ..pipeline import Pipeline
from ..stages import VAD, Denoise, Resample
from ..stages.vad import NEURAL_RATES
from . import require
from ._async import AsyncProcessor
from ._stream import StreamFacts, StreamProcessor

require("pipecat", "MediacoreFilter (pipecat)")
from pipecat.audio.filters.base_audio_filter import BaseAudioFilter  # noqa: E402
from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADParams  # noqa: E402
from pipecat.frames.frames import FilterControlFrame, FilterEnableFrame, FilterUpdateSettingsFrame  # noqa: E402

_CHAIN_OPTIONS = {name for name, p in inspect.signature(default_chain).parameters.items()
                  if p.kind is p.KEYWORD_ONLY} - {"sample_rate", "num_channels"}


class MediacoreFilter(StreamFacts, BaseAudioFilter):
    """pipecat ``BaseAudioFilter``: denoise (and level) the transport's input audio.

    Parameters
    ----------
    num_channels : int, default 1
        Channels of the transport's input (``TransportParams.audio_in_channels``).
    offload : bool or Executor, default True
        Run the pipeline on a worker thread so the transport's loop never waits.
    **chain_options
        Options of :func:`~mediacore.default_chain` (``denoise``, ``agc``, ``max_attenuation_db`` ...).
    """

    def __init__(self, *, num_channels: int = 1, offload: bool | Executor = True, **chain_options: Any) -> None:
        if int(num_channels) != num_channels or num_channels < 1:
            raise ParameterError(f"MediacoreFilter: expected num_channels >= 1, got {num_channels!r}")
        self._check_options(chain_options)
        self.num_channels = int(num_channels)
        self._offload = offload
        self._options = dict(chain_options)
        self._sample_rate: int | None = None
        self.enabled = True
        self._build()

    async def start(self, sample_rate: int) -> None:
        self._sample_rate = int(sample_rate)
        self._stream.reset()
        self._stream.warm_up(sample_rate=self._sample_rate, num_channels=self.num_channels)

    async def stop(self) -> None:
        # state is dropped at the next start; until then stats stay readable
        self._sample_rate = None

    async def process_frame(self, frame: FilterControlFrame) -> None:
        if isinstance(frame, FilterEnableFrame):
            self.enabled = bool(frame.enable)
        elif isinstance(frame, FilterUpdateSettingsFrame):
            options = {**self._options, **dict(frame.settings)}
            self._check_options(options)
            self._options = options
            self._build()
            if self._sample_rate is not None:
                self._stream.warm_up(sample_rate=self._sample_rate, num_channels=self.num_channels)

    async def filter(self, audio: bytes) -> bytes:
        if not self.enabled or self._sample_rate is None or not audio:
            return audio
        out = await self._async.process_interleaved(audio, sample_rate=self._sample_rate,
                                                    num_channels=self.num_channels)
        return out.tobytes()

    def _build(self) -> None:
        self._stream = StreamProcessor(name="MediacoreFilter", **self._options)
        self._async = AsyncProcessor(self._stream, offload=self._offload)

    @staticmethod
    def _check_options(options: dict[str, Any]) -> None:
        unknown = set(options) - _CHAIN_OPTIONS
        if unknown:
            raise ParameterError(f"MediacoreFilter: expected settings among {sorted(_CHAIN_OPTIONS)}, "
                                 f"got {sorted(unknown)}")


class MediacoreVADAnalyzer(VADAnalyzer):
    """pipecat ``VADAnalyzer``: speech confidence from our VAD, on denoised audio by default.

    Parameters
    ----------
    sample_rate : int, optional
        Fixed rate; otherwise the transport's rate (``set_sample_rate``).
    params : pipecat VADParams, optional
        Thresholds and start/stop times of pipecat's state machine.
    backend : {"auto", "neural", "webrtc", "energy"}, default "auto"
        Our VAD backend (see :class:`~mediacore.VAD`).  ``auto``: ``neural``
        (the denoiser model's speech probability, no second inference after
        ``denoise="neural"``) where the VAD's rate is 16 or 48 kHz, else ``webrtc``.
    denoise : {"neural", "dsp", "none"}, default "neural"
        Denoiser in front of the VAD; rates it does not take are resampled for it.
    window_ms : int, default 20
        Audio per confidence (a multiple of 10 ms).
    **vad_options
        For :class:`~mediacore.VAD` (``mode``, ``threshold_db``); ``hangover_ms``
        defaults to 0 here because pipecat's ``stop_secs`` already holds speech.

    ``voice_confidence`` returns the mean of the 10 ms speech probabilities
    of the window.  The VAD and denoiser keep state across windows (noise
    floor, hangover), which pipecat's single-thread executor allows: windows
    arrive in order.
    """

    def __init__(self, *, sample_rate: int | None = None, params: VADParams | None = None, backend: str = "auto",
                 denoise: str = "neural", window_ms: int = 20, **vad_options: Any) -> None:
        if backend not in ("auto", *VAD.BACKENDS):
            raise ParameterError(f"MediacoreVADAnalyzer: expected backend in {('auto', *VAD.BACKENDS)}, "
                                 f"got {backend!r}")
        if denoise not in ("neural", "dsp", "none"):
            raise ParameterError(f"MediacoreVADAnalyzer: expected denoise in ('neural', 'dsp', 'none'), got {denoise!r}")
        if int(window_ms) != window_ms or window_ms < 10 or window_ms % 10:
            raise ParameterError(f"MediacoreVADAnalyzer: expected window_ms as a multiple of 10, got {window_ms!r}")
        self.backend, self.denoise, self.window_ms = backend, denoise, int(window_ms)
        self.vad_options = {"hangover_ms": 0.0, **vad_options}
        self._pipe: Pipeline | None = None
        super().__init__(sample_rate=sample_rate, params=params)

    def set_sample_rate(self, sample_rate: int) -> None:
        super().set_sample_rate(sample_rate)
        self._pipe = self._build(self.sample_rate)

    def num_frames_required(self) -> int:
        return self.sample_rate * self.window_ms // 1000

    def voice_confidence(self, buffer: bytes) -> float:
        if self._pipe is None:
            raise ParameterError("MediacoreVADAnalyzer: voice_confidence before set_sample_rate (no rate known)")
        pcm = np.frombuffer(buffer, np.int16)
        if self.num_channels > 1:
            pcm = pcm.reshape(-1, self.num_channels).mean(axis=1)
        out = self._pipe.process_frame(AudioFrame(pcm.astype(np.float32) / 32768, self.sample_rate))
        prob = out.meta.get("speech_prob")
        return 0.0 if prob is None or prob.size == 0 else float(np.mean(prob))

    def _build(self, rate: int) -> Pipeline:
        stages: list = []
        vad_rate = rate
        if self.denoise != "none":
            vad_rate = working_rate(rate, self.denoise)
            if vad_rate != rate:
                stages.append(Resample(sample_rate=rate, output_sample_rate=vad_rate))
            stages.append(Denoise(sample_rate=vad_rate, backend=self.denoise))
        backend = self.backend
        if backend == "auto":
            backend = "neural" if vad_rate in NEURAL_RATES else "webrtc"
        stages.append(VAD(sample_rate=vad_rate, backend=backend, **self.vad_options))
        pipe = Pipeline(stages, num_channels=1)
        pipe.process(np.zeros(vad_rate // 10 * rate // vad_rate, np.float32))  # load kernels and model now
        pipe.reset()
        return pipe
