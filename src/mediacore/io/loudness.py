"""The measuring pass of loudness normalisation in ``clean_media``: decode,
run the pipeline, meter its output (BS.1770); nothing is written."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import av
import numpy as np

from mediacore.errors import MediaError
from mediacore.io._av import audio_streams_or_raise, error_text, open_input
from mediacore.io.read import AudioStreamDecoder
from mediacore.stages.loudness import LoudnessMeter


class FollowedBy:
    """``first`` then ``second`` behind the AudioPipeline protocol of clean_media
    (process / flush / latency / output_sample_rate); ``second`` is a Stage."""

    def __init__(self, first: Any, second: Any) -> None:
        self.first, self.second = first, second
        self.latency = int(getattr(first, "latency", 0)) + int(second.latency)
        self.output_sample_rate = int(second.output_sample_rate)

    def process(self, x: np.ndarray) -> np.ndarray:
        return self.second.process(np.atleast_2d(self.first.process(x)))

    def flush(self) -> np.ndarray:
        return np.concatenate([self.second.process(np.atleast_2d(self.first.flush())), self.second.flush()], axis=1)


class _Measure:
    def __init__(self, path: str, container: Any, stream: Any, make_pipeline: Callable[[int, int], Any]) -> None:
        self.dec = AudioStreamDecoder(path, container, stream)
        self.make_pipeline = make_pipeline
        self.pipeline: Any = None
        self.meter: LoudnessMeter | None = None
        self.to_drop = 0

    def feed(self, packet: Any | None) -> None:
        for x in self.dec.decode(packet):
            if self.pipeline is None:
                self.pipeline = self.make_pipeline(self.dec.sample_rate, self.dec.channels)
                self.to_drop = int(getattr(self.pipeline, "latency", 0))
                rate = int(getattr(self.pipeline, "output_sample_rate", self.dec.sample_rate))
                self.meter = LoudnessMeter(sample_rate=rate, num_channels=self.dec.channels)
            self._meter(self.pipeline.process(x))

    def _meter(self, y: np.ndarray) -> None:
        y = np.asarray(y, np.float32)
        if y.ndim == 1:
            y = y[None, :]
        if self.to_drop:
            k = min(self.to_drop, y.shape[1])
            y = y[:, k:]
            self.to_drop -= k
        if y.shape[1]:
            self.meter.process(y)

    def result(self) -> float:
        self.dec.check_not_empty()
        self._meter(self.pipeline.flush())
        self.meter.flush()
        return self.meter.last.integrated_lufs


def measure_processed_loudness(path: str, make_pipeline: Callable[[int, int], Any], *,
                               all_streams: bool) -> dict[int, float]:
    """{input stream index: integrated loudness (LUFS) of make_pipeline's output}
    for the audio streams clean_media processes (all of them, or the first)."""
    with open_input(path, complete=True) as ic:
        streams = audio_streams_or_raise(ic, path)
        if not all_streams:
            streams = streams[:1]
        jobs = {s.index: _Measure(path, ic, s, make_pipeline) for s in streams}
        try:
            for packet in ic.demux(streams):
                j = jobs.get(packet.stream_index)
                if j is not None:  # demux may end with flush packets of other streams
                    j.feed(packet)
        except av.FFmpegError as exc:
            raise MediaError(f"{path}: corrupt or truncated (demux error): {error_text(exc)}") from exc
        for j in jobs.values():
            j.feed(None)
        return {i: j.result() for i, j in jobs.items()}
