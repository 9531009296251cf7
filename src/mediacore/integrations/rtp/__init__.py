"""Opus RTP relay for SFU sidecars (mediasoup PlainTransport, Janus rtp_forward): ``mediacore relay``."""

from .jitter import JitterBuffer
from .packet import MalformedPacket, RtpPacket, build_rtcp_bye, is_rtcp, parse_rtp, rtcp_packet_types
from .relay import OpusDecoder, OpusEncoder, Relay, RelayConfig, RelayCore
from .sdp import AudioDescription, parse_sdp

__all__ = ["AudioDescription", "JitterBuffer", "MalformedPacket", "OpusDecoder", "OpusEncoder", "Relay",
           "RelayConfig", "RelayCore", "RtpPacket", "build_rtcp_bye", "is_rtcp", "parse_rtp", "parse_sdp",
           "rtcp_packet_types"]
