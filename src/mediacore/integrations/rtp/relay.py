"""Opus RTP relay: receive, put in order, decode, process, re-encode, send on.

The sidecar pattern of SFUs: mediasoup's PlainTransport and Janus'
``rtp_forward`` send a participant's Opus RTP to a UDP port; the relay
listens there (described by an SDP: address, port, payload type, channels)
and sends the processed stream as Opus RTP to another address, for the SFU
(a second PlainTransport producer / an RTP source) or a recorder to take.

Per stream:

* **receive**: strict RFC 3550 parsing; malformed datagrams, other payload
  types and foreign SSRCs are dropped and counted.  A new SSRC that persists
  (``ssrc_switch_packets`` packets in a row) is taken as the sender's
  restart: buffer and decoder start over, the output stream goes on.
* **jitter buffer** (:class:`~.jitter.JitterBuffer`): in-order packets go
  straight through; a gap holds later packets up to ``max_wait_ms``; then the
  missing packet is declared lost.  Late and duplicate packets are dropped.
* **decode, recover, conceal**: libopus.  A lost packet is decoded from the
  in-band FEC copy (LBRR) in the packet after it when the sender adds one
  (``useinbandfec``); otherwise libopus' packet-loss concealment extrapolates
  it; so is a timestamp jump without a sequence gap (discontinuous
  transmission), up to one second.
* **process**: a :class:`~mediacore.integrations.StreamProcessor` (default
  chain, neural denoiser) at 48 kHz, one frame out per frame in.
* **encode and send**: libopus, ``ptime_ms`` packets, our own SSRC, a random
  initial sequence number and timestamp (RFC 3550 5.1), timestamps advancing
  by the samples in each packet, marker bit on the first packet.  A BYE from
  the sender (RTCP) ends the output with a BYE; the sender report's packet
  count lets packets lost at the very end be concealed too, so the output
  lasts as long as the input.

Added delay: the pipeline latency (11 ms for the default chain at 48 kHz),
the encoder's lookahead (6.5 ms, ``application="voip"``; 2.5 ms with
``"lowdelay"``), the processing time, and ``max_wait_ms`` only while a gap
is open.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import random
import struct
import time
from dataclasses import dataclass
from typing import Any, Callable

import av
import numpy as np

from ...errors import FormatError, MediaCoreError, ParameterError
from .._stream import PipelineFactory, StreamProcessor
from .jitter import JitterBuffer
from .packet import (RTCP_BYE, RTCP_SR, MalformedPacket, RtpPacket, build_rtcp_bye, build_rtcp_sr, is_rtcp,
                     parse_rtp, rtcp_packet_types)
from .sdp import AudioDescription

log = logging.getLogger("mediacore.relay")

OPUS_RATE = 48000
APPLICATIONS = ("voip", "audio", "lowdelay")


class OpusDecoder:
    """Opus decoder with packet-loss concealment and in-band FEC, float32 (channels, samples) out.

    Uses libopus directly (the library PyAV ships, through
    :mod:`mediacore.codec`), which can decode a lost packet from the FEC copy
    (LBRR) in the packet after it; FFmpeg's decoder cannot.  Without that
    library it falls back to PyAV's libopus decoder, where a lost packet is
    concealed (a TOC-only packet makes libopus extrapolate) and FEC is unused.
    """

    MAX_FRAME = 5760  # 120 ms at 48 kHz, the longest Opus packet

    def __init__(self, channels: int) -> None:
        self.channels = channels
        self.reset()

    @property
    def backend(self) -> str:
        return "libopus" if self._lib is not None else "pyav"

    def reset(self) -> None:
        self._lib = self._ctx = None
        self._has_lbrr = None
        try:
            from ...codec._libopus import LibOpusDecoder, _load

            self._lib = LibOpusDecoder(OPUS_RATE, self.channels)
            has = getattr(_load(), "opus_packet_has_lbrr", None)  # libopus >= 1.5
            if has is not None:
                has.restype, has.argtypes = ctypes.c_int, [ctypes.c_char_p, ctypes.c_int32]
                self._has_lbrr = has
        except (ImportError, OSError, MediaCoreError):
            self._ctx = av.CodecContext.create("libopus", "r")
            self._ctx.sample_rate = OPUS_RATE
            self._ctx.layout = "stereo" if self.channels == 2 else "mono"
        self._toc: int | None = None
        self.frame_samples = 960

    def decode(self, payload: bytes) -> np.ndarray:
        if self._lib is not None:
            y = self._lib.decode(payload, self.MAX_FRAME)
        else:
            y = self._to_array(self._ctx.decode(av.Packet(payload)))
        self._toc = payload[0]
        if y.shape[1]:
            self.frame_samples = y.shape[1]
        return y

    def has_fec(self, payload: bytes) -> bool:
        """Whether ``payload`` carries an FEC copy of the packet before it (and we can decode it)."""
        if self._lib is None or not payload:
            return False
        if self._has_lbrr is None:
            return True  # older libopus: try; it conceals when there is none
        return self._has_lbrr(payload, len(payload)) == 1

    def recover(self, next_payload: bytes, samples: int) -> np.ndarray:
        """The lost packet before ``next_payload``, from its FEC copy (``samples`` long)."""
        return self._lib.decode(next_payload, samples, fec=True)

    def conceal(self, samples: int) -> np.ndarray:
        """``samples`` of concealment: libopus PLC after a packet, silence before the first one."""
        if self._toc is None or samples <= 0:
            return np.zeros((self.channels, max(samples, 0)), np.float32)
        parts, have = [], 0
        while have < samples:
            if self._lib is not None:
                # PLC lengths are whole 2.5 ms steps; the excess is trimmed below
                n = min(self.MAX_FRAME, -(-(samples - have) // 120) * 120)
                y = self._lib.decode(None, n)
            else:
                # a TOC byte alone (code 0, empty frame) tells libopus a frame of that duration is missing
                y = self._to_array(self._ctx.decode(av.Packet(bytes([self._toc & 0xFC]))))
            if y.shape[1] == 0:
                break
            parts.append(y)
            have += y.shape[1]
        y = np.concatenate(parts, axis=1) if parts else np.zeros((self.channels, 0), np.float32)
        if y.shape[1] < samples:
            y = np.concatenate([y, np.zeros((self.channels, samples - y.shape[1]), np.float32)], axis=1)
        return y[:, :samples]

    def _to_array(self, frames: list) -> np.ndarray:
        parts = []
        for f in frames:
            a = f.to_ndarray()
            x = a if f.format.is_planar else a.reshape(-1, self.channels).T
            parts.append(x.astype(np.float32) / (32768.0 if f.format.name.startswith("s16") else 1.0))
        return np.concatenate(parts, axis=1) if parts else np.zeros((self.channels, 0), np.float32)


class OpusEncoder:
    """libopus encoder: int16 (channels, ptime samples) in, Opus packets out."""

    def __init__(self, channels: int, *, bitrate: int, application: str, ptime_ms: int, complexity: int = 10,
                 fec_loss_percent: int = 0) -> None:
        self.channels = channels
        self.frame_samples = OPUS_RATE * ptime_ms // 1000
        ctx = av.CodecContext.create("libopus", "w")
        ctx.sample_rate = OPUS_RATE
        ctx.layout = "stereo" if channels == 2 else "mono"
        ctx.format = "s16"
        ctx.bit_rate = int(bitrate)
        ctx.options = {"application": application, "frame_duration": str(ptime_ms),
                       "compression_level": str(complexity)}
        if fec_loss_percent:
            # in-band FEC for the receivers downstream, sized for the loss they expect
            ctx.options = {**ctx.options, "fec": "1", "packet_loss": str(fec_loss_percent)}
        self.options = dict(ctx.options)  # what the encoder was opened with (PyAV empties ctx.options)
        ctx.open()
        self._ctx = ctx
        self._pts = 0

    def encode(self, pcm: np.ndarray) -> list[bytes]:
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm.T.reshape(1, -1)), format="s16",
                                           layout=self._ctx.layout.name)
        frame.sample_rate = OPUS_RATE
        frame.pts = self._pts
        self._pts += pcm.shape[1]
        return [bytes(p) for p in self._ctx.encode(frame)]


@dataclass
class RelayConfig:
    """Everything about one relayed stream except the sockets."""

    input: AudioDescription
    payload_type: int | None = None          # output PT; default the input's
    ssrc: int | None = None                  # output SSRC; default random
    bitrate: int = 48000                     # bit/s per stream
    application: str = "voip"
    complexity: int = 10                     # libopus 0..10: lower is cheaper (about half the encode at 3)
    fec_loss_percent: int = 0                # >0: in-band FEC in our output, for that expected loss (%)
    decode_fec: bool = True                  # recover lost packets from the next packet's FEC copy
    ptime_ms: int = 20
    max_wait_ms: float = 40.0
    ssrc_switch_packets: int = 5
    max_gap_fill_ms: float = 1000.0

    def __post_init__(self) -> None:
        if self.input.encoding.lower() != "opus" or self.input.clock_rate != OPUS_RATE:
            raise FormatError(f"Relay: expected opus/48000 in the SDP, got "
                              f"{self.input.encoding}/{self.input.clock_rate}")
        if self.application not in APPLICATIONS:
            raise ParameterError(f"Relay: expected application in {APPLICATIONS}, got {self.application!r}")
        if int(self.complexity) != self.complexity or not 0 <= self.complexity <= 10:
            raise ParameterError(f"Relay: expected complexity in 0..10, got {self.complexity!r}")
        if int(self.fec_loss_percent) != self.fec_loss_percent or not 0 <= self.fec_loss_percent <= 100:
            raise ParameterError(f"Relay: expected fec_loss_percent in 0..100, got {self.fec_loss_percent!r}")
        if self.ptime_ms not in (10, 20, 40, 60):
            raise ParameterError(f"Relay: expected ptime_ms in (10, 20, 40, 60), got {self.ptime_ms!r}")
        if not 6000 <= self.bitrate <= 510000:
            raise ParameterError(f"Relay: expected bitrate in [6000, 510000] bit/s, got {self.bitrate!r}")
        pt = self.input.payload_type if self.payload_type is None else self.payload_type
        if not 0 <= pt < 128:
            raise ParameterError(f"Relay: expected payload_type in 0..127, got {pt!r}")
        self.payload_type = pt


class RelayCore:
    """The socket-free part of the relay: datagrams in, RTP datagrams out, with a clock passed in."""

    def __init__(self, config: RelayConfig, *, pipeline_factory: PipelineFactory | None = None,
                 processor: StreamProcessor | None = None, **chain_options: Any) -> None:
        self.config = config
        self.channels = 2 if config.input.stereo else 1
        if processor is None:
            processor = StreamProcessor(pipeline_factory=pipeline_factory, name="Relay", **chain_options)
            processor.warm_up(sample_rate=OPUS_RATE, num_channels=self.channels)
        self.processor = processor
        self.jitter = JitterBuffer(max_wait_ms=config.max_wait_ms)
        self.decoder = OpusDecoder(self.channels)
        self.encoder = OpusEncoder(self.channels, bitrate=config.bitrate, application=config.application,
                                   ptime_ms=config.ptime_ms, complexity=config.complexity,
                                   fec_loss_percent=config.fec_loss_percent)
        rnd = random.SystemRandom()
        self.ssrc = rnd.getrandbits(32) if config.ssrc is None else config.ssrc & 0xFFFFFFFF
        self._seq = rnd.getrandbits(16)
        self._ts = rnd.getrandbits(32)
        self._in_ssrc: int | None = None
        self._candidate: tuple[int, int] | None = None  # (ssrc, consecutive packets)
        self._dropped_deciding = 0  # packets of the current SSRC dropped before switching to it
        self._expected_ts: int | None = None
        self._fifo = np.zeros((self.channels, 0), np.float32)
        self.sender_packets: int | None = None  # from the input's last sender report
        self.ended = False
        self.stats = {"datagrams": 0, "rtp_packets": 0, "rtcp_packets": 0, "malformed": 0,
                      "wrong_payload_type": 0, "foreign_ssrc": 0, "ssrc_changes": 0, "decode_errors": 0,
                      "concealed_packets": 0, "concealed_samples": 0, "fec_recovered_packets": 0,
                      "gap_fill_samples": 0,
                      "tail_concealed_packets": 0, "samples_in": 0, "packets_out": 0, "octets_out": 0,
                      "samples_out": 0}

    @property
    def jitter_stats(self) -> dict[str, int]:
        return self.jitter.stats

    def all_stats(self) -> dict[str, Any]:
        return {**self.stats, "jitter": dict(self.jitter.stats), "processor": dict(self.processor.stats),
                "ssrc": self.ssrc, "input_ssrc": self._in_ssrc}

    # ------------------------------------------------------------------ input
    def receive(self, data: bytes, now: float) -> tuple[list[bytes], list[int]]:
        """One datagram from the RTP (or muxed RTCP) port: return (RTP datagrams to send, RTCP types seen)."""
        self.stats["datagrams"] += 1
        if is_rtcp(data):
            return [], self.receive_rtcp(data)
        try:
            pkt = parse_rtp(data)
        except MalformedPacket as exc:
            self.stats["malformed"] += 1
            log.debug("dropped: %s", exc)
            return [], []
        if pkt.payload_type != self.config.input.payload_type:
            self.stats["wrong_payload_type"] += 1
            return [], []
        if not pkt.payload:
            self.stats["malformed"] += 1
            return [], []
        if not self._accept_ssrc(pkt.ssrc):
            return [], []
        self.stats["rtp_packets"] += 1
        self.jitter.push(pkt.sequence, pkt, now)
        return self._drain(self.jitter.pop(now)), []

    def receive_rtcp(self, data: bytes) -> list[int]:
        """An RTCP datagram: count it, note BYE and the last sender report."""
        try:
            types = rtcp_packet_types(data)
        except MalformedPacket:
            self.stats["malformed"] += 1
            return []
        self.stats["rtcp_packets"] += 1
        if types and types[0] == RTCP_SR and len(data) >= 28:
            ssrc, _, _, _, sender_packets = struct.unpack_from("!IIIII", data, 4)
            if self._in_ssrc in (None, ssrc):
                self.sender_packets = sender_packets
        return types

    def tick(self, now: float) -> list[bytes]:
        """Release packets whose gap has timed out."""
        return self._drain(self.jitter.pop(now))

    def next_deadline(self) -> float | None:
        return self.jitter.next_deadline()

    def finish(self) -> list[bytes]:
        """End of stream: conceal open gaps and packets lost at the very end (from the sender report)."""
        out = self._drain(self.jitter.flush())
        sent = self.sender_packets
        js = self.jitter.stats
        if sent is not None and self._in_ssrc is not None:
            missing = sent - (js["released"] + js["lost"]) - self._dropped_deciding
            if 0 < missing <= 50:  # a tail of a second or less: beyond that the report is not ours
                self.stats["tail_concealed_packets"] += missing
                out += self._drain([(None, None)] * missing)
        self.ended = True
        return out

    # ---------------------------------------------------------------- helpers
    def _accept_ssrc(self, ssrc: int) -> bool:
        if self._in_ssrc is None:
            self._in_ssrc = ssrc
            return True
        if ssrc == self._in_ssrc:
            self._candidate = None
            return True
        self.stats["foreign_ssrc"] += 1
        n = self._candidate[1] + 1 if self._candidate and self._candidate[0] == ssrc else 1
        self._candidate = (ssrc, n)
        if n < self.config.ssrc_switch_packets:
            return False
        # the sender restarted with a new SSRC: new sequence space and codec state, same output stream
        self.stats["ssrc_changes"] += 1
        self._in_ssrc, self._candidate = ssrc, None
        self._dropped_deciding = n - 1
        self.sender_packets = None  # the old sender's report does not count the new one
        self.jitter.reset()
        self.decoder.reset()
        self._expected_ts = None
        return True

    def _drain(self, released: list[tuple[int | None, Any]]) -> list[bytes]:
        if not released:
            return []
        parts = []
        for i, (ext, pkt) in enumerate(released):
            if pkt is None:
                n = self.decoder.frame_samples
                nxt = released[i + 1] if i + 1 < len(released) else (None, None)
                if (self.config.decode_fec and nxt[1] is not None and ext is not None and nxt[0] == ext + 1
                        and self.decoder.has_fec(nxt[1].payload)):
                    # the packet after the lost one carries a low-bitrate copy of it
                    parts.append(self.decoder.recover(nxt[1].payload, n))
                    self.stats["fec_recovered_packets"] += 1
                else:
                    parts.append(self.decoder.conceal(n))
                    self.stats["concealed_packets"] += 1
                    self.stats["concealed_samples"] += n
                if self._expected_ts is not None:
                    self._expected_ts = (self._expected_ts + n) & 0xFFFFFFFF
                continue
            if self._expected_ts is not None:
                gap = ((pkt.timestamp - self._expected_ts + 0x80000000) & 0xFFFFFFFF) - 0x80000000
                if 0 < gap <= OPUS_RATE * self.config.max_gap_fill_ms / 1000:
                    # timestamps jumped without a sequence gap (DTX): keep the timeline
                    parts.append(self.decoder.conceal(gap))
                    self.stats["gap_fill_samples"] += gap
            try:
                y = self.decoder.decode(pkt.payload)
            except (av.error.FFmpegError, ValueError) as exc:
                self.stats["decode_errors"] += 1
                log.debug("decode error: %s", exc)
                y = self.decoder.conceal(self.decoder.frame_samples)
                self.stats["concealed_samples"] += y.shape[1]
            parts.append(y)
            self._expected_ts = (pkt.timestamp + y.shape[1]) & 0xFFFFFFFF
        x = np.concatenate(parts, axis=1)
        self.stats["samples_in"] += x.shape[1]
        y = self.processor.process(x, sample_rate=OPUS_RATE)
        self._fifo = np.concatenate([self._fifo, y], axis=1)
        return self._packetise()

    def _packetise(self) -> list[bytes]:
        out = []
        n = self.encoder.frame_samples
        while self._fifo.shape[1] >= n:
            pcm = self.processor.to_int16(self._fifo[:, :n])
            self._fifo = self._fifo[:, n:]
            for payload in self.encoder.encode(pcm):
                out.append(RtpPacket(payload_type=self.config.payload_type, sequence=self._seq, timestamp=self._ts,
                                     ssrc=self.ssrc, payload=payload,
                                     marker=self.stats["packets_out"] == 0).build())
                self._seq = (self._seq + 1) & 0xFFFF
                self._ts = (self._ts + n) & 0xFFFFFFFF
                self.stats["packets_out"] += 1
                self.stats["octets_out"] += len(payload)
                self.stats["samples_out"] += n
        return out

    def sender_report(self, now_wall: float) -> bytes:
        return build_rtcp_sr(self.ssrc, ntp_time=now_wall, rtp_timestamp=self._ts,
                             packets=self.stats["packets_out"], octets=self.stats["octets_out"])

    def bye(self, now_wall: float) -> bytes:
        """Our last RTCP: a sender report (final counts) and BYE."""
        return build_rtcp_bye(self.ssrc, report=self.sender_report(now_wall))


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes], None]) -> None:
        self.on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.on_datagram(data)

    def error_received(self, exc: Exception) -> None:  # ICMP port unreachable from a receiver not up yet
        log.debug("socket error: %s", exc)


class Relay:
    """One relayed stream on asyncio sockets.

    Parameters
    ----------
    config : RelayConfig
        What comes in (from the SDP) and how to encode what goes out.
    send_to : (host, port)
        Where the processed RTP goes; RTCP goes to port + 1.
    listen : (host, port), optional
        Where to receive; default the SDP's address and port (RTCP on port + 1
        unless the SDP says ``a=rtcp`` or ``a=rtcp-mux``).
    exit_on_bye : bool, default True
        Finish (and send BYE on) when the sender says BYE.
    idle_timeout_s : float or None
        Finish when nothing arrived for this long after the first packet.
    pipeline_factory, **chain_options
        The pipeline (default :func:`~mediacore.default_chain`).
    """

    def __init__(self, config: RelayConfig, *, send_to: tuple[str, int], listen: tuple[str, int] | None = None,
                 exit_on_bye: bool = True, idle_timeout_s: float | None = None,
                 pipeline_factory: PipelineFactory | None = None, **chain_options: Any) -> None:
        self.core = RelayCore(config, pipeline_factory=pipeline_factory, **chain_options)
        d = config.input
        self.listen = listen or (d.address, d.port)
        self.rtcp_listen = None if d.rtcp_mux else (self.listen[0], d.rtcp_port or self.listen[1] + 1)
        self.send_to = send_to
        self.exit_on_bye = exit_on_bye
        self.idle_timeout_s = idle_timeout_s
        self._transports: list[asyncio.DatagramTransport] = []
        self._timer: asyncio.TimerHandle | None = None
        self._done: asyncio.Future | None = None
        self._last_rx: float | None = None
        self._last_sr = 0.0
        #: per output packet: monotonic send time (for latency measurements)
        self.send_times: list[float] = []
        self._cpu_s = 0.0  # thread CPU time spent in this stream's callbacks

    @property
    def stats(self) -> dict[str, Any]:
        st = self.core.all_stats()
        st["cpu_s"] = round(self._cpu_s, 6)
        st["audio_s"] = st["samples_out"] / OPUS_RATE
        return st

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        t, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self._on_rtp), local_addr=self.listen)
        self._transports.append(t)
        self._rtp = t
        if self.rtcp_listen:
            t2, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self._on_rtcp),
                                                        local_addr=self.rtcp_listen)
            self._transports.append(t2)
        if self.idle_timeout_s:
            loop.call_later(self.idle_timeout_s, self._check_idle)

    async def wait_closed(self) -> dict[str, Any]:
        """Wait until the stream ended (BYE or idle); return the stats."""
        await self._done
        return self.stats

    def close(self) -> None:
        """Finish now: conceal open gaps, send the rest and a BYE, close the sockets."""
        if self.core.ended:
            return
        self._send(self.core.finish())
        self._rtp.sendto(self.core.bye(time.time()), (self.send_to[0], self.send_to[1] + 1))
        if self._timer:
            self._timer.cancel()
        for t in self._transports:
            t.close()
        if self._done and not self._done.done():
            self._done.set_result(None)

    async def __aenter__(self) -> "Relay":
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()

    # ---------------------------------------------------------------- events
    def _on_rtp(self, data: bytes) -> None:
        if self.core.ended:
            return
        t0 = time.thread_time()
        now = time.monotonic()
        self._last_rx = now
        out, rtcp = self.core.receive(data, now)
        self._send(out)
        self._after_rtcp(rtcp)
        self._schedule()
        self._cpu_s += time.thread_time() - t0

    def _on_rtcp(self, data: bytes) -> None:
        if not self.core.ended:
            t0 = time.thread_time()
            self._after_rtcp(self.core.receive_rtcp(data))
            self._cpu_s += time.thread_time() - t0

    def _after_rtcp(self, types: list[int]) -> None:
        if RTCP_BYE in types and self.exit_on_bye:
            self.close()

    def _on_timer(self) -> None:
        self._timer = None
        if not self.core.ended:
            t0 = time.thread_time()
            self._send(self.core.tick(time.monotonic()))
            self._schedule()
            self._cpu_s += time.thread_time() - t0

    def _schedule(self) -> None:
        deadline = self.core.next_deadline()
        if deadline is None or self._timer is not None:
            return
        loop = asyncio.get_running_loop()
        self._timer = loop.call_at(loop.time() + max(0.0, deadline - time.monotonic()), self._on_timer)

    def _check_idle(self) -> None:
        if self.core.ended:
            return
        loop = asyncio.get_running_loop()
        if self._last_rx is not None and time.monotonic() - self._last_rx >= self.idle_timeout_s:
            self.close()
        else:
            loop.call_later(self.idle_timeout_s / 4, self._check_idle)

    def _send(self, packets: list[bytes]) -> None:
        if not packets:
            return
        now = time.monotonic()
        for p in packets:
            self._rtp.sendto(p, self.send_to)
            self.send_times.append(now)
        if now - self._last_sr > 5.0:  # a sender report now and then, for receivers' lip sync and stats
            self._last_sr = now
            self._rtp.sendto(self.core.sender_report(time.time()), (self.send_to[0], self.send_to[1] + 1))
