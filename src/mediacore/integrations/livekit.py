"""LiveKit: a ``livekit.rtc.FrameProcessor[AudioFrame]`` running a mediacore pipeline.

Use it wherever LiveKit takes a noise-cancellation processor::

    from livekit import rtc
    from mediacore.integrations.livekit import MediacoreProcessor

    stream = rtc.AudioStream.from_track(track=track, sample_rate=48000, num_channels=1,
                                        noise_cancellation=MediacoreProcessor(sample_rate=48000))

    # livekit-agents
    from livekit.agents.voice import room_io
    room_io.RoomOptions(audio_input=room_io.AudioInputOptions(noise_cancellation=MediacoreProcessor(sample_rate=24000)))

The class deliberately has no ``__call__``: livekit-agents treats a callable
``noise_cancellation`` as a selector ``(params) -> processor``.

``AudioStream`` calls :meth:`_process` on its event loop for every frame and
passes the original frame on if it raises, so the processing must be quick
(under 0.1 ms per 20 ms of 48 kHz mono for the default chain).  Frames are
int16 interleaved at the stream's rate (LiveKit agents default to 24 kHz,
50 ms frames); each frame comes back with the same rate, channel count and
length.  The output lags the input by the pipeline latency (``delay_ms``),
emitted as leading silence.  A change of rate or channel count restarts the
stream on a pipeline for the new format (see
:class:`~mediacore.integrations.StreamProcessor`).
"""

from __future__ import annotations

from typing import Any

from . import require
from ._stream import PipelineFactory, StreamFacts, StreamProcessor

rtc = require("livekit.rtc", "MediacoreProcessor (LiveKit)")


class MediacoreProcessor(StreamFacts, rtc.FrameProcessor[rtc.AudioFrame]):
    """LiveKit frame processor: denoise (and level) each participant's audio.

    Parameters
    ----------
    sample_rate : int, optional
        Rate (Hz) of the stream this will see, e.g. 48000 for ``AudioStream``,
        24000 for livekit-agents' default ``AudioInputOptions``.  Given, the
        pipeline is built and run once here, so the first frame does not stall
        the event loop (hundreds of ms at 48 kHz otherwise, during which
        LiveKit's source fills the gap with silence).  Other rates still work;
        they are built on first use.
    num_channels : int, default 1
        Channel count to warm up for.
    enabled : bool, default True
        While False, frames pass through untouched (LiveKit also skips the call).
    pipeline_factory : callable (sample_rate, num_channels) -> Stage, optional
        Default :func:`~mediacore.default_chain` with ``chain_options``.
    **chain_options
        For the default chain, e.g. ``agc=False`` (LiveKit agents run their own AGC).
    """

    def __init__(self, *, sample_rate: int | None = None, num_channels: int = 1, enabled: bool = True,
                 pipeline_factory: PipelineFactory | None = None,
                 **chain_options: Any) -> None:
        self._enabled = bool(enabled)
        self._closed = False
        self._stream = StreamProcessor(pipeline_factory=pipeline_factory, name="MediacoreProcessor",
                                       **chain_options)
        if sample_rate is not None:
            self._stream.warm_up(sample_rate=sample_rate, num_channels=num_channels)
        self.stream_info: dict[str, str] = {}

    @property
    def enabled(self) -> bool:
        return self._enabled and not self._closed

    @enabled.setter
    def enabled(self, value: bool) -> None:
        self._enabled = bool(value)

    def _on_stream_info_updated(self, *, room_name: str, participant_identity: str,
                                publication_sid: str) -> None:
        # a new track is a new stream: start from clean state
        self.stream_info = {"room_name": room_name, "participant_identity": participant_identity,
                            "publication_sid": publication_sid}
        self._stream.reset()

    def _on_stream_info_cleared(self) -> None:
        self.stream_info = {}
        self._stream.reset()

    def _process(self, frame: rtc.AudioFrame) -> rtc.AudioFrame:
        if not self.enabled:
            return frame
        out = self._stream.process_interleaved(frame.data, sample_rate=frame.sample_rate,
                                               num_channels=frame.num_channels)
        return rtc.AudioFrame(out.tobytes(), frame.sample_rate, frame.num_channels, frame.samples_per_channel,
                              userdata=dict(frame.userdata))

    def _close(self) -> None:
        self._closed = True
        self._stream.reset()
