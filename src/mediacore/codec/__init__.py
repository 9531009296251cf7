"""Encode and decode stages on PyAV / FFmpeg.

Audio: :class:`OpusEncoder`, :class:`AacEncoder`, :class:`FlacEncoder`,
:class:`AudioDecoder`.  Video: :class:`VideoEncoder` (VP8, VP9, H.264, AV1
with real-time settings), :class:`VideoScale`, :class:`SimulcastLadder`,
:class:`VideoDecoder`.  :class:`PacketPipeline` chains packets -> frames ->
stages -> packets for either.  Packets are :class:`EncodedPacket` (bytes + pts in a
time base) for streaming; :func:`mux_packets` writes them to a file.
"""

from mediacore.codec._pyav import mux_packets
from mediacore.codec.audio import AacEncoder, AudioDecoder, AudioEncoder, FlacEncoder, OpusEncoder
from mediacore.codec.packet import EncodedPacket
from mediacore.codec.pipeline import PacketPipeline
from mediacore.codec.video import SimulcastLadder, VideoDecoder, VideoEncoder, VideoScale

__all__ = [
    "AacEncoder", "AudioDecoder", "AudioEncoder", "EncodedPacket", "FlacEncoder", "OpusEncoder", "PacketPipeline",
    "SimulcastLadder", "VideoDecoder", "VideoEncoder", "VideoScale", "mux_packets",
]
