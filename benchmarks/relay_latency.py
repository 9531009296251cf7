"""`mediacore relay` on loopback: added latency against ffmpeg, and streams per core.

1. **Added latency** (needs the ``ffmpeg`` program).  ffmpeg sends the bundled
   noisy clip as Opus RTP in real time through a UDP proxy to the relay (the
   ``mediacore relay`` command) and a second ffmpeg records the relay's
   output; a third records the input as the relay got it.  Added latency =
   the time a packet spends in the relay (proxy-out time minus proxy-in time
   of the packet with the same index, median and p95) + the delay the relay
   adds to the audio (cross-correlation lag between the two recordings:
   pipeline latency + Opus encoder lookahead).  Run for ``--application``
   voip (default) and lowdelay.

2. **Streams per core** (no ffmpeg needed).  ``--streams`` relays on one
   asyncio loop in one thread, each fed its own copy of the clip as Opus RTP
   packets at real time (20 ms) from another thread, for ``--seconds``.  Each
   relay counts the thread CPU time of its callbacks (parse, jitter buffer,
   decode, pipeline, encode, send); streams per core = audio seconds relayed
   / CPU seconds.  The bare pipeline (StreamProcessor on the decoded audio,
   no RTP/Opus) is timed on the same frames in the same run, so the ratio
   shows what the relay adds around the denoiser.

Usage::

    .venv/bin/python benchmarks/relay_latency.py [--json OUT] [--streams 8] [--seconds 10]
"""

from __future__ import annotations

import os

for _v in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from mediacore.bench.environment import environment, format_environment  # noqa: E402
from mediacore.bench.example import example_audio  # noqa: E402
from mediacore.integrations import StreamProcessor  # noqa: E402
from mediacore.integrations.rtp import (OpusDecoder, OpusEncoder, Relay, RelayConfig, RtpPacket,  # noqa: E402
                                        parse_rtp, parse_sdp)

RATE = 48000
SDP = "v=0\nc=IN IP4 127.0.0.1\nm=audio {port} RTP/AVP 111\na=rtpmap:111 opus/48000/2\n"


def latency(application: str) -> dict:
    from relay_harness import FFMPEG, run_relay, transit_ms
    from signals import lag_of

    if FFMPEG is None:
        return {"skipped": "ffmpeg not found"}
    clip = example_audio("noisy")
    with tempfile.TemporaryDirectory() as tmp:
        r = run_relay(Path(tmp), clip, extra_args=("--application", application))
    tr = transit_ms(r)
    algo = lag_of(r.direct, r.output, 4800)
    return {"application": application, "transit_ms_median": float(np.median(tr)),
            "transit_ms_p95": float(np.percentile(tr, 95)), "audio_delay_samples": int(algo),
            "audio_delay_ms": 1000 * algo / RATE, "added_ms": float(np.median(tr)) + 1000 * algo / RATE,
            "packets": r.sent_packets, "out_samples": len(r.output), "in_samples": r.clip_samples}


def _packets(clip: np.ndarray, seconds: float) -> list[bytes]:
    n = int(seconds * RATE) // 960 * 960
    x = np.resize(clip, n)
    pcm = np.clip(np.rint(x * 32768), -32768, 32767).astype(np.int16)
    enc = OpusEncoder(1, bitrate=32000, application="voip", ptime_ms=20)
    out = []
    for i in range(0, n, 960):
        for payload in enc.encode(pcm[None, i:i + 960]):
            k = len(out)
            out.append(RtpPacket(payload_type=111, sequence=k & 0xFFFF, timestamp=960 * k, ssrc=7,
                                 payload=payload).build())
    return out


def streams_per_core(n_streams: int, seconds: float, complexity: int = 10) -> dict:
    clip = example_audio("noisy")
    packets = _packets(clip, seconds)
    ports = []
    for _ in range(n_streams):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink_port = sink.getsockname()[1]
    relays: list[Relay] = []
    ready = threading.Event()
    result: dict = {}

    async def serve():
        for p in ports:
            cfg = RelayConfig(input=parse_sdp(SDP.format(port=p)), complexity=complexity)
            # RTCP for both ends goes to ports nobody reads: the sink drops RTP only
            relays.append(Relay(cfg, send_to=("127.0.0.1", sink_port), listen=("127.0.0.1", p),
                                idle_timeout_s=1.0))
        for r in relays:
            await r.start()
        ready.set()
        result["stats"] = await asyncio.gather(*[r.wait_closed() for r in relays])

    def drain():
        sink.settimeout(0.5)
        while True:
            try:
                sink.recv(4096)
            except OSError:
                return

    loop_thread = threading.Thread(target=lambda: asyncio.run(serve()))
    loop_thread.start()
    ready.wait(60)
    threading.Thread(target=drain, daemon=True).start()
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    t0 = time.monotonic()
    for k, pkt in enumerate(packets):  # every stream gets packet k at t0 + 20 ms * k
        time.sleep(max(0.0, t0 + 0.02 * k - time.monotonic()))
        for p in ports:
            tx.sendto(pkt, ("127.0.0.1", p))
    loop_thread.join()
    sink.close()
    stats = result["stats"]
    cpu = sum(s["cpu_s"] for s in stats)
    audio = sum(s["audio_s"] for s in stats)
    lost = sum(s["jitter"]["lost"] for s in stats)

    # the bare pipeline on the same frames, same thread, for the ratio
    dec = OpusDecoder(1)
    frames = [dec.decode(parse_rtp(p).payload) for p in packets]
    sp = StreamProcessor()
    sp.warm_up(sample_rate=RATE, num_channels=1)
    t = time.thread_time()
    for f in frames:
        sp.process(f, sample_rate=RATE)
    bare = time.thread_time() - t
    return {"streams": n_streams, "seconds": seconds, "complexity": complexity, "audio_s": audio, "relay_cpu_s": cpu,
            "relay_streams_per_core": audio / cpu, "relay_ms_per_packet": 1000 * cpu / (len(packets) * n_streams),
            "pipeline_streams_per_core": len(frames) * 0.02 / bare,
            "pipeline_ms_per_packet": 1000 * bare / len(frames), "lost_packets": lost,
            "packets_out": sum(s["packets_out"] for s in stats), "packets_in": len(packets) * n_streams}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--streams", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    env = environment()
    print(format_environment(env))
    out = {"environment": env, "latency": [latency("voip"), latency("lowdelay")],
           "capacity": [streams_per_core(args.streams, args.seconds, c) for c in (10, 3)]}
    print("\nAdded latency on loopback (ffmpeg -> relay -> ffmpeg):")
    for row in out["latency"]:
        if "skipped" in row:
            print("  skipped:", row["skipped"])
            continue
        print(f"  {row['application']:>8}: {row['added_ms']:.1f} ms = in relay {row['transit_ms_median']:.2f} ms "
              f"(p95 {row['transit_ms_p95']:.2f}) + audio delay {row['audio_delay_ms']:.1f} ms "
              f"({row['audio_delay_samples']} samples); {row['packets']} packets, "
              f"{row['out_samples']} samples out for {row['in_samples']} in")
    for c in out["capacity"]:
        print(f"\nStreams per core, {c['streams']} relays on one loop, {c['seconds']:.0f} s each, "
              f"Opus complexity {c['complexity']}:")
        print(f"  relay (RTP + Opus decode + default chain + Opus encode): {c['relay_streams_per_core']:.0f} "
              f"streams/core ({c['relay_ms_per_packet']:.3f} ms per 20 ms packet)")
        print(f"  default chain alone on the same frames:                 {c['pipeline_streams_per_core']:.0f} "
              f"streams/core ({c['pipeline_ms_per_packet']:.3f} ms per 20 ms frame)")
        print(f"  packets in {c['packets_in']}, out {c['packets_out']}, lost {c['lost_packets']}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
