"""``mediacore relay``: the command-line front of :class:`~.relay.Relay`."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

from ...errors import MediaError
from .relay import APPLICATIONS, Relay, RelayConfig
from .sdp import AudioDescription, parse_sdp


def host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) to a tuple; argparse type."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT with a port in 1..65535, got {text!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def add_parser(sub: Any, chain_options: Any) -> argparse.ArgumentParser:
    """Add the ``relay`` subcommand to the ``mediacore`` parser."""
    p = sub.add_parser(
        "relay", help="denoise an Opus RTP stream: receive (SDP), process, re-encode, send on",
        description="Receive Opus RTP described by an SDP (as written by ffmpeg -sdp_file, a mediasoup "
                    "PlainTransport consumer or Janus rtp_forward), put it in order, conceal losses, run the "
                    "default chain, re-encode Opus and send RTP to --send (RTCP to its port + 1).  Ends on the "
                    "sender's RTCP BYE, after --idle-timeout, or on Ctrl-C, and prints the stream's counters "
                    "as JSON.")
    p.add_argument("--sdp", required=True, type=Path, help="SDP describing the incoming stream")
    p.add_argument("--send", required=True, type=host_port, metavar="HOST:PORT", help="where to send the RTP")
    p.add_argument("--listen", type=host_port, metavar="HOST:PORT",
                   help="where to receive (default: the SDP's connection address and port)")
    p.add_argument("--sdp-out", type=Path, help="write the SDP of the outgoing stream here (for the receiver)")
    p.add_argument("--payload-type", type=int, help="outgoing payload type (default: the incoming one)")
    p.add_argument("--ssrc", type=int, help="outgoing SSRC (default: random)")
    p.add_argument("--bitrate", type=int, default=48000, help="Opus bit rate in bit/s (default: %(default)s)")
    p.add_argument("--application", choices=APPLICATIONS, default="voip",
                   help="Opus encoder mode; lowdelay cuts 4 ms of lookahead (default: %(default)s)")
    p.add_argument("--complexity", type=int, default=10, choices=range(11), metavar="0..10",
                   help="Opus encoder complexity; lower is cheaper per stream (default: %(default)s)")
    p.add_argument("--fec", type=int, default=0, metavar="PERCENT",
                   help="add Opus in-band FEC to the output, sized for this expected loss (default: off)")
    p.add_argument("--max-wait-ms", type=float, default=40.0,
                   help="how long a gap in the sequence may hold later packets before it counts as lost "
                        "(default: %(default)s)")
    p.add_argument("--idle-timeout", type=float, default=None, metavar="SECONDS",
                   help="end when no packet arrived for this long")
    p.add_argument("--stats", type=Path, help="write the final counters to this JSON file as well")
    chain_options(p)
    return p


def run(args: argparse.Namespace) -> int:
    try:
        desc = parse_sdp(args.sdp.read_text())
    except OSError as exc:
        raise MediaError(f"relay: cannot read the SDP {args.sdp}: {exc.strerror}") from None
    config = RelayConfig(input=desc, payload_type=args.payload_type, ssrc=args.ssrc, bitrate=args.bitrate,
                         application=args.application, complexity=args.complexity, fec_loss_percent=args.fec,
                         max_wait_ms=args.max_wait_ms)
    relay = Relay(config, send_to=args.send, listen=args.listen, idle_timeout_s=args.idle_timeout,
                  denoise=args.denoise, agc=args.agc)
    if args.sdp_out:
        out = AudioDescription(address=args.send[0], port=args.send[1], payload_type=config.payload_type,
                               encoding="opus", clock_rate=48000, channels=2,
                               fmtp={"sprop-stereo": "1" if relay.core.channels == 2 else "0"})
        args.sdp_out.write_text(out.to_sdp())

    async def main() -> dict[str, Any]:
        await relay.start()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, relay.close)
            except (NotImplementedError, RuntimeError):  # not on this platform / thread
                pass
        print(f"relay: {desc.encoding}/{desc.clock_rate} PT {desc.payload_type} on "
              f"{relay.listen[0]}:{relay.listen[1]} -> {args.send[0]}:{args.send[1]} PT {config.payload_type}, "
              f"SSRC {relay.core.ssrc}", file=sys.stderr, flush=True)
        return await relay.wait_closed()

    stats = asyncio.run(main())
    text = json.dumps(stats, indent=2)
    print(text)
    if args.stats:
        args.stats.write_text(text + "\n")
    return 0


__all__ = ["add_parser", "host_port", "run"]
