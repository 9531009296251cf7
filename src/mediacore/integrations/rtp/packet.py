"""RTP (RFC 3550) packets: parse, build, and the few RTCP packets a relay needs.

Parsing is strict, because a relay on an open UDP port sees garbage: every
length field is checked against the datagram, and anything inconsistent
raises :class:`MalformedPacket` (a :class:`~mediacore.errors.FormatError`) with
what was expected and what was found.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ...errors import FormatError

RTP_VERSION = 2
RTCP_SR, RTCP_RR, RTCP_SDES, RTCP_BYE, RTCP_APP = 200, 201, 202, 203, 204


class MalformedPacket(FormatError):
    """A datagram that is not a well-formed RTP or RTCP packet."""


@dataclass
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension: tuple[int, bytes] | None = None  # (profile, data) of the header extension

    def build(self) -> bytes:
        """Serialise (no padding)."""
        if not 0 <= self.payload_type < 128:
            raise FormatError(f"RtpPacket: expected payload_type in 0..127, got {self.payload_type}")
        if len(self.csrcs) > 15:
            raise FormatError(f"RtpPacket: expected at most 15 CSRCs, got {len(self.csrcs)}")
        b0 = (RTP_VERSION << 6) | (0x10 if self.extension else 0) | len(self.csrcs)
        b1 = (0x80 if self.marker else 0) | self.payload_type
        head = struct.pack("!BBHII", b0, b1, self.sequence & 0xFFFF, self.timestamp & 0xFFFFFFFF,
                           self.ssrc & 0xFFFFFFFF)
        head += b"".join(struct.pack("!I", c) for c in self.csrcs)
        if self.extension:
            profile, data = self.extension
            if len(data) % 4:
                raise FormatError(f"RtpPacket: expected extension data in 32-bit words, got {len(data)} bytes")
            head += struct.pack("!HH", profile, len(data) // 4) + data
        return head + self.payload


def is_rtcp(data: bytes) -> bool:
    """True for RTCP (RFC 5761 demultiplexing: second byte 192..223 is an RTCP packet type)."""
    return len(data) >= 2 and 192 <= data[1] <= 223


def parse_rtp(data: bytes) -> RtpPacket:
    """Parse one RTP packet; raise MalformedPacket unless every field is consistent."""
    n = len(data)
    if n < 12:
        raise MalformedPacket(f"RTP: expected at least 12 bytes, got {n}")
    b0, b1, seq, ts, ssrc = struct.unpack_from("!BBHII", data)
    if b0 >> 6 != RTP_VERSION:
        raise MalformedPacket(f"RTP: expected version 2, got {b0 >> 6}")
    cc = b0 & 0x0F
    off = 12 + 4 * cc
    if off > n:
        raise MalformedPacket(f"RTP: {cc} CSRCs need {off} bytes, got {n}")
    csrcs = struct.unpack_from(f"!{cc}I", data, 12) if cc else ()
    ext = None
    if b0 & 0x10:
        if off + 4 > n:
            raise MalformedPacket(f"RTP: header extension needs {off + 4} bytes, got {n}")
        profile, words = struct.unpack_from("!HH", data, off)
        end = off + 4 + 4 * words
        if end > n:
            raise MalformedPacket(f"RTP: header extension of {words} words needs {end} bytes, got {n}")
        ext = (profile, bytes(data[off + 4: end]))
        off = end
    end = n
    if b0 & 0x20:
        pad = data[-1]
        if pad == 0 or off + pad > n:
            raise MalformedPacket(f"RTP: padding of {pad} bytes does not fit a {n - off}-byte payload")
        end = n - pad
    return RtpPacket(payload_type=b1 & 0x7F, sequence=seq, timestamp=ts, ssrc=ssrc,
                     payload=bytes(data[off:end]), marker=bool(b1 & 0x80), csrcs=tuple(csrcs), extension=ext)


def rtcp_packet_types(data: bytes) -> list[int]:
    """Packet types of an RTCP compound packet; MalformedPacket if a length field is inconsistent."""
    types, off, n = [], 0, len(data)
    while off < n:
        if off + 4 > n:
            raise MalformedPacket(f"RTCP: expected a 4-byte header at offset {off}, got {n - off} bytes")
        b0, pt, words = struct.unpack_from("!BBH", data, off)
        if b0 >> 6 != RTP_VERSION:
            raise MalformedPacket(f"RTCP: expected version 2, got {b0 >> 6}")
        size = 4 * (words + 1)
        if off + size > n:
            raise MalformedPacket(f"RTCP: packet type {pt} of {size} bytes at offset {off} exceeds {n} bytes")
        types.append(pt)
        off += size
    if not types:
        raise MalformedPacket("RTCP: expected at least one packet, got an empty datagram")
    return types


def build_rtcp_bye(ssrc: int, *, report: bytes | None = None) -> bytes:
    """An RTCP compound packet that ends a stream: ``report`` (an SR; default an empty RR), then BYE.

    RFC 3550 6.1: a compound packet starts with a report, so receivers parse it.
    """
    if report is None:
        report = struct.pack("!BBHI", 0x80, RTCP_RR, 1, ssrc & 0xFFFFFFFF)
    return report + struct.pack("!BBHI", 0x81, RTCP_BYE, 1, ssrc & 0xFFFFFFFF)


def build_rtcp_sr(ssrc: int, *, ntp_time: float, rtp_timestamp: int, packets: int, octets: int) -> bytes:
    """A sender report without report blocks (lets receivers map RTP time to wall-clock time)."""
    secs = int(ntp_time) + 2208988800  # NTP epoch is 1900
    frac = int((ntp_time % 1.0) * (1 << 32)) & 0xFFFFFFFF
    return struct.pack("!BBHIIIIII", 0x80, RTCP_SR, 6, ssrc & 0xFFFFFFFF, secs & 0xFFFFFFFF, frac,
                       rtp_timestamp & 0xFFFFFFFF, packets & 0xFFFFFFFF, octets & 0xFFFFFFFF)
