"""End-to-end relay harness: ffmpeg sends, a UDP proxy impairs and times, `mediacore relay` relays, ffmpeg records.

::

    ffmpeg -re -f rtp  ->  proxy_in (loss/reorder/dups/garbage) -> relay (CLI)  -> proxy_out (timing) -> ffmpeg (wav)
                                   \\-> ffmpeg (wav): the input as the relay got it, decoded independently

Used by tests/test_relay.py and benchmarks/relay_latency.py.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from integration_helpers import free_udp_port_pair

FFMPEG = shutil.which("ffmpeg")
HOST = "127.0.0.1"


@dataclass
class Impairment:
    loss: float = 0.0
    reorder: float = 0.0     # a packet is held back and sent after the next one
    duplicate: float = 0.0
    garbage: float = 0.0     # a malformed datagram is sent after a packet
    seed: int = 0


@dataclass
class ProxyLog:
    forwarded: list[tuple[float, int]] = field(default_factory=list)  # (time, seq) of RTP sent on
    sent_by_source: int = 0
    dropped: int = 0
    duplicated: int = 0
    reordered: int = 0
    garbage: int = 0
    rtcp: int = 0


class UdpProxy(threading.Thread):
    """Forward RTP (port) and RTCP (port + 1) to targets, impairing the RTP; log times and sequence numbers."""

    def __init__(self, port: int, targets: list[int], impairment: Impairment | None = None) -> None:
        super().__init__(daemon=True)
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind((HOST, port))
        self.rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtcp.bind((HOST, port + 1))
        self.targets = targets
        self.imp = impairment or Impairment()
        self.rng = np.random.default_rng(self.imp.seed)
        self.log = ProxyLog()
        self._held: bytes | None = None
        self._halt = False

    def _send(self, data: bytes) -> None:
        for t in self.targets:
            self.rtp.sendto(data, (HOST, t))
        if len(data) >= 12 and not 192 <= data[1] <= 223:
            self.log.forwarded.append((time.monotonic(), struct.unpack_from("!H", data, 2)[0]))

    def _on_rtp(self, data: bytes) -> None:
        self.log.sent_by_source += 1
        r = self.rng.random(4)
        if self.log.sent_by_source > 3 and r[0] < self.imp.loss:
            self.log.dropped += 1
            return
        if self._held is None and r[1] < self.imp.reorder:
            self._held = data
            self.log.reordered += 1
            return
        self._send(data)
        if self._held is not None:
            self._send(self._held)
            self._held = None
        if r[2] < self.imp.duplicate:
            self._send(data)
            self.log.duplicated += 1
        if r[3] < self.imp.garbage:
            self._send(b"\x80" + bytes(self.rng.integers(0, 256, 5, dtype=np.uint8)))
            self.log.garbage += 1

    def run(self) -> None:
        while not self._halt:
            ready, _, _ = select.select([self.rtp, self.rtcp], [], [], 0.05)
            for s in ready:
                data = s.recv(65536)
                if s is self.rtp:
                    self._on_rtp(data)
                else:
                    if self._held is not None:  # nothing stays held past the end of the stream
                        self._send(self._held)
                        self._held = None
                    self.log.rtcp += 1
                    for t in self.targets:
                        self.rtcp.sendto(data, (HOST, t + 1))

    def stop(self) -> None:
        self._halt = True
        self.join(2)
        self.rtp.close()
        self.rtcp.close()


def write_clip(path: Path, x: np.ndarray, rate: int = 48000) -> None:
    sf.write(str(path), x, rate, subtype="PCM_16")


def _ffmpeg(*args: str) -> list[str]:
    return [FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", *args]


def receiver(sdp: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen(_ffmpeg("-protocol_whitelist", "file,udp,rtp", "-i", str(sdp), "-c:a", "pcm_s16le",
                                    "-y", str(out)), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@dataclass
class RelayRun:
    clip_samples: int
    sent_packets: int
    relay_stats: dict
    proxy_in: ProxyLog
    proxy_out: ProxyLog
    direct: np.ndarray      # what the relay was sent, decoded by ffmpeg (channel 0)
    output: np.ndarray      # what the relay sent, recorded by ffmpeg (channel 0)
    relay_stderr: str
    timing: dict = field(default_factory=dict)


def run_relay(workdir: Path, clip: np.ndarray, *, impairment: Impairment | None = None, payload_type: int = 109,
              extra_args: tuple[str, ...] = (), sender_fec_percent: int = 0, timeout_s: float = 60.0) -> RelayRun:
    """Send ``clip`` (48 kHz mono float) through ffmpeg -> proxy -> relay -> proxy -> ffmpeg; return the logs."""
    workdir.mkdir(parents=True, exist_ok=True)
    wav = workdir / "clip.wav"
    write_clip(wav, clip)
    p_in, p_relay, p_direct, p_out, p_recv = (free_udp_port_pair() for _ in range(5))
    sdp_in, sdp_out, sdp_direct = workdir / "in.sdp", workdir / "out.sdp", workdir / "direct.sdp"
    # send_bye: RTCP BYE at the end, as a closing PlainTransport / forwarder would; the relay ends on it
    send_args = ["-ac", "1", "-c:a", "libopus", "-b:a", "32k", "-payload_type", str(payload_type),
                 "-rtpflags", "send_bye", "-f", "rtp"]
    if sender_fec_percent:  # in-band FEC, as WebRTC senders add it (useinbandfec=1)
        send_args[4:4] = ["-fec:a", "1", "-packet_loss:a", str(sender_fec_percent)]  # :a, not the RTP muxer's fec
    # ffmpeg writes the SDP of what it will send; a 20 ms run with the same options produces it up front
    subprocess.run(_ffmpeg("-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono", "-t", "0.02", *send_args,
                           "-sdp_file", str(sdp_in), f"rtp://{HOST}:{p_in}"), check=True, timeout=20,
                   stdout=subprocess.DEVNULL)
    sdp_direct.write_text(sdp_in.read_text().replace(f"m=audio {p_in} ", f"m=audio {p_direct} "))
    stats_path = workdir / "stats.json"
    relay = subprocess.Popen([sys.executable, "-m", "mediacore", "relay", "--sdp", str(sdp_in), "--listen",
                              f"{HOST}:{p_relay}", "--send", f"{HOST}:{p_out}", "--sdp-out", str(sdp_out),
                              "--stats", str(stats_path), "--idle-timeout", "5", *extra_args],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONUNBUFFERED": "1"})
    t0 = time.monotonic()
    line = relay.stderr.readline()
    timing = {"relay_start_s": time.monotonic() - t0}  # printed once the sockets are bound and the pipeline is warm
    if not line.startswith("relay:"):
        relay.kill()
        raise RuntimeError(f"relay did not start: {line}{relay.stderr.read()}")
    sdp_recv = workdir / "recv.sdp"
    sdp_recv.write_text(sdp_out.read_text().replace(f"m=audio {p_out} ", f"m=audio {p_recv} "))
    out_wav, direct_wav = workdir / "out.wav", workdir / "direct.wav"
    rec_out, rec_direct = receiver(sdp_recv, out_wav), receiver(sdp_direct, direct_wav)
    proxy_in = UdpProxy(p_in, [p_relay, p_direct], impairment)
    proxy_out = UdpProxy(p_out, [p_recv])
    proxy_in.start()
    proxy_out.start()
    time.sleep(0.5)  # the receivers bind their ports
    try:
        t0 = time.monotonic()
        subprocess.run(_ffmpeg("-re", "-i", str(wav), *send_args, f"rtp://{HOST}:{p_in}"), check=True,
                       timeout=timeout_s, stdout=subprocess.DEVNULL)
        timing["send_s"] = time.monotonic() - t0
        err = relay.communicate(timeout=timeout_s)[1]
        timing["relay_end_s"] = time.monotonic() - t0
        for rec in (rec_out, rec_direct):
            rec.wait(timeout=10)
        timing["receivers_end_s"] = time.monotonic() - t0
    finally:
        for p in (relay, rec_out, rec_direct):
            if p.poll() is None:
                p.kill()
        proxy_in.stop()
        proxy_out.stop()
    if relay.returncode != 0:
        raise RuntimeError(f"relay exited with {relay.returncode}: {err}")
    out = sf.read(str(out_wav), dtype="float32")[0][:, 0]
    direct = sf.read(str(direct_wav), dtype="float32")[0][:, 0]
    return RelayRun(clip_samples=len(clip), sent_packets=proxy_in.log.sent_by_source,
                    relay_stats=json.loads(stats_path.read_text()), proxy_in=proxy_in.log,
                    proxy_out=proxy_out.log, direct=direct, output=out, relay_stderr=line + err, timing=timing)


def transit_ms(run: RelayRun) -> np.ndarray:
    """Per output packet: time it left the relay minus the time the input packet with the same index entered.

    Only meaningful without impairment (packet k out carries the audio of packet k in).
    """
    t_in = np.array([t for t, _ in run.proxy_in.forwarded])
    t_out = np.array([t for t, _ in run.proxy_out.forwarded])
    n = min(len(t_in), len(t_out))
    return 1000 * (t_out[:n] - t_in[:n])
