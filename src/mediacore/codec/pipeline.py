"""PacketPipeline: packets -> decoder -> stages -> encoder -> packets, for
audio (a Stage or Pipeline in the middle) and video (VideoScale or any
frame -> frame stages in the middle; a VideoEncoder or SimulcastLadder at
the end)."""

from __future__ import annotations

from typing import Any

import numpy as np

from mediacore.codec.audio import AudioDecoder, AudioEncoder
from mediacore.codec.packet import EncodedPacket
from mediacore.codec.video import SimulcastLadder, VideoDecoder, VideoEncoder
from mediacore.errors import FormatError, ParameterError


class PacketPipeline:
    """Decode, process, re-encode; ``process(packets)`` returns the packets
    that are ready, ``flush()`` drains decoder, stages and encoder.

    Audio: ``PacketPipeline(AudioDecoder(...), stage_or_None, AudioEncoder)``;
    the rates must chain (the error says where to put a Resample).
    Video: ``PacketPipeline(VideoDecoder(...), [VideoScale(...), ...] or None,
    VideoEncoder or SimulcastLadder)``; a ladder's packets come out in one
    list, each with ``meta["layer"]``.
    """

    def __init__(self, decoder: Any, stages: Any, encoder: Any) -> None:
        if isinstance(decoder, AudioDecoder):
            if not isinstance(encoder, AudioEncoder):
                raise ParameterError(f"PacketPipeline: expected an audio encoder after AudioDecoder, "
                                     f"got {type(encoder).__name__}")
            rate = stages.sample_rate if stages is not None else encoder.sample_rate
            if decoder.sample_rate != rate:
                raise FormatError(f"PacketPipeline: decoder outputs {decoder.sample_rate} Hz, stages expect {rate} Hz")
            out_rate = stages.output_sample_rate if stages is not None else rate
            if out_rate != encoder.sample_rate:
                raise FormatError(f"PacketPipeline: stages output {out_rate} Hz, {encoder.name} expects "
                                  f"{encoder.sample_rate} Hz (insert Resample)")
            self.kind = "audio"
        elif isinstance(decoder, VideoDecoder):
            if not isinstance(encoder, (VideoEncoder, SimulcastLadder)):
                raise ParameterError(f"PacketPipeline: expected VideoEncoder or SimulcastLadder after VideoDecoder, "
                                     f"got {type(encoder).__name__}")
            if stages is not None and not isinstance(stages, (list, tuple)):
                stages = [stages]
            self.kind = "video"
        else:
            raise ParameterError(f"PacketPipeline: expected AudioDecoder or VideoDecoder first, "
                                 f"got {type(decoder).__name__}")
        self.decoder, self.stages, self.encoder = decoder, stages, encoder

    @property
    def latency(self) -> int:
        """Audio: samples the stages delay the audio (codec priming is in the packets' pts)."""
        if self.kind == "audio" and self.stages is not None:
            return self.stages.latency
        return 0

    def process(self, packets: EncodedPacket | list[EncodedPacket]) -> list[EncodedPacket]:
        if self.kind == "audio":
            x = self.decoder.process(packets)
            if self.stages is not None:
                x = self.stages.process(x)
            return self.encoder.process(x)
        return self._encode_frames(self.decoder.process(packets))

    def flush(self) -> list[EncodedPacket]:
        if self.kind == "audio":
            x = self.decoder.flush()
            if self.stages is not None:
                x = np.concatenate([self.stages.process(x), self.stages.flush()], axis=1)
            return self.encoder.process(x) + self.encoder.flush()
        out = self._encode_frames(self.decoder.flush())
        return out + self._flat(self.encoder.flush())

    def _encode_frames(self, frames: list[Any]) -> list[EncodedPacket]:
        out: list[EncodedPacket] = []
        for f in frames:
            for st in self.stages or ():
                f = st.process(f)
            out += self._flat(self.encoder.process(f))
        return out

    @staticmethod
    def _flat(packets: Any) -> list[EncodedPacket]:
        if isinstance(packets, dict):  # a simulcast ladder: one list, ordered by layer
            return [p for layer in packets.values() for p in layer]
        return list(packets)

    def __repr__(self) -> str:
        return f"PacketPipeline({self.decoder!r}, {self.stages!r}, {self.encoder!r})"
