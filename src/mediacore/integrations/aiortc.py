"""aiortc: a MediaStreamTrack that runs a mediacore pipeline on another audio track.

::

    from mediacore.integrations.aiortc import MediacoreTrack

    @pc.on("track")
    def on_track(track):
        if track.kind == "audio":
            pc_out.addTrack(MediacoreTrack(track))      # relay it denoised
            # or: recorder.addTrack(MediacoreTrack(track))

aiortc's Opus decoder yields ``s16`` packed stereo frames of 960 samples at
48 kHz, ``pts`` counted in samples and ``time_base`` 1/48000.  Each frame of
the source comes out as one frame with the same format, layout, rate, sample
count, ``pts`` and ``time_base``; the audio in it lags by the pipeline latency
(``delay_ms``, emitted as leading silence).  Planar (``s16p``, ``fltp``) and
float (``flt``) frames and mono/stereo layouts are handled the same way, and
a change of rate or layout restarts the stream on a pipeline for the new
format (see :class:`~mediacore.integrations.StreamProcessor`).

Processing runs on a worker thread by default (``offload=True``), so the
event loop that also drives ICE, DTLS and RTP never waits for it.
"""

from __future__ import annotations

from concurrent.futures import Executor
from typing import Any

import av
import numpy as np

from ..errors import FormatError
from . import require
from ._async import AsyncProcessor
from ._stream import PipelineFactory, StreamFacts, StreamProcessor

mediastreams = require("aiortc.mediastreams", "MediacoreTrack (aiortc)")

_SCALE = {"s16": 32768.0, "s16p": 32768.0, "flt": 1.0, "fltp": 1.0}


class MediacoreTrack(StreamFacts, mediastreams.MediaStreamTrack):
    """Audio track: ``source``'s frames, processed.

    Parameters
    ----------
    source : MediaStreamTrack
        An audio track (a remote track from ``pc.on("track")``, a MediaPlayer track ...).
    mix_to_mono : bool, default False
        Process the mean of the channels once and write it to every channel.
        aiortc decodes every Opus stream to stereo; for a mono talker this
        halves the cost.
    offload : bool or Executor, default True
        Where to run the pipeline (see :class:`~mediacore.integrations.AsyncProcessor`).
    pipeline_factory, **chain_options
        The pipeline per format (default :func:`~mediacore.default_chain`).

    Stopping this track does not stop ``source``: its owner does that.
    """

    kind = "audio"

    def __init__(self, source: Any, *, mix_to_mono: bool = False, offload: bool | Executor = True,
                 pipeline_factory: PipelineFactory | None = None, **chain_options: Any) -> None:
        super().__init__()
        if getattr(source, "kind", None) != "audio":
            raise FormatError(f"MediacoreTrack: expected an audio track, got kind {getattr(source, 'kind', None)!r}")
        self.source = source
        self.mix_to_mono = bool(mix_to_mono)
        self._stream = StreamProcessor(pipeline_factory=pipeline_factory, name="MediacoreTrack", **chain_options)
        self._async = AsyncProcessor(self._stream, offload=offload)

    def warm_up(self, *, sample_rate: int = 48000, num_channels: int = 1) -> None:
        """Build and run the pipeline now (default: aiortc's 48 kHz; mono when ``mix_to_mono``)."""
        self._stream.warm_up(sample_rate=sample_rate, num_channels=num_channels)

    async def recv(self) -> Any:
        frame = await self.source.recv()
        fmt = frame.format.name
        if fmt not in _SCALE:
            raise FormatError(f"MediacoreTrack: expected an audio frame of format s16, s16p, flt or fltp, got {fmt}")
        n_ch = len(frame.layout.channels)
        n = frame.samples
        arr = frame.to_ndarray()
        x = arr.reshape(n, n_ch).T if not frame.format.is_planar else arr  # (channels, samples)
        x = x.astype(np.float32) / np.float32(_SCALE[fmt])
        if self.mix_to_mono and n_ch > 1:
            y = await self._async.process(x.mean(axis=0, keepdims=True), sample_rate=frame.sample_rate)
            y = np.repeat(y, n_ch, axis=0)
        else:
            y = await self._async.process(x, sample_rate=frame.sample_rate)
        if fmt.startswith("s16"):
            y = self._stream.to_int16(y)
        out_arr = y if frame.format.is_planar else y.T.reshape(1, -1)
        out = av.AudioFrame.from_ndarray(np.ascontiguousarray(out_arr), format=fmt, layout=frame.layout.name)
        out.sample_rate = frame.sample_rate
        out.pts = frame.pts
        out.time_base = frame.time_base
        return out
