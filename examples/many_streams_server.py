"""Many streams on one asyncio server, processed on worker threads: the event loop never waits.

A TCP server: each connection is one audio stream.  The client sends a header
(``b"MCS1"``, sample rate as uint32, channel count as uint16, big-endian),
then frames of int16 interleaved PCM, each prefixed by its byte length
(uint32).  The server answers every frame with a frame of the same length:
the audio denoised by the default chain, delayed by its latency (leading
silence).  Frames may be any size; rate and channels are per connection.

Each connection has its own :class:`~mediacore.integrations.AsyncProcessor`
with thread offload: frames of one stream stay in order, different streams
run in parallel on the shared worker pool (one thread per core; our kernels
release the GIL), and the loop only does socket I/O.

::

    python examples/many_streams_server.py --port 7000                  # serve
    python examples/many_streams_server.py --selftest 32 --seconds 5    # 32 real-time clients against itself

``--selftest`` prints the per-frame round-trip time (p50, p99) and the
longest stall of the event loop, and checks that every stream got back
exactly the samples it sent.
"""

from __future__ import annotations

import argparse
import asyncio
import struct
import time

import numpy as np

from mediacore.bench.example import example_audio
from mediacore.integrations import AsyncProcessor

MAGIC = b"MCS1"
HEADER = struct.Struct("!4sIH")
LENGTH = struct.Struct("!I")


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, offload: bool = True,
                 chain_options: dict | None = None) -> None:
    try:
        magic, rate, channels = HEADER.unpack(await reader.readexactly(HEADER.size))
        if magic != MAGIC or not 8000 <= rate <= 192000 or not 1 <= channels <= 8:
            writer.write(b"ERR expected header MCS1 <rate 8000..192000> <channels 1..8>\n")
            return
        proc = AsyncProcessor(offload=offload, **(chain_options or {}))
        # build and warm the pipeline off the loop, before acknowledging
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: proc.processor.warm_up(sample_rate=rate, num_channels=channels))
        writer.write(MAGIC)
        while True:
            (n,) = LENGTH.unpack(await reader.readexactly(LENGTH.size))
            pcm = await reader.readexactly(n)
            out = await proc.process_interleaved(pcm, sample_rate=rate, num_channels=channels)
            writer.write(LENGTH.pack(out.nbytes) + out.tobytes())
            await writer.drain()
    except asyncio.IncompleteReadError:
        pass  # the client hung up
    finally:
        writer.close()


async def serve(host: str, port: int, *, offload: bool = True) -> asyncio.Server:
    return await asyncio.start_server(lambda r, w: handle(r, w, offload=offload), host, port)


async def client(host: str, port: int, pcm: np.ndarray, *, rate: int, frame: int, seconds: float) -> dict:
    """Send ``seconds`` of ``pcm`` in real time, ``frame`` samples at a time; time each round trip."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(HEADER.pack(MAGIC, rate, 1))
    if await reader.readexactly(4) != MAGIC:
        raise RuntimeError("server refused the stream")
    n_frames = int(seconds * rate / frame)
    sent = got = 0
    rtts = []
    t0 = time.monotonic()
    for k in range(n_frames):
        await asyncio.sleep(max(0.0, t0 + k * frame / rate - time.monotonic()))
        chunk = np.resize(pcm[(k * frame) % len(pcm):], frame)
        t = time.monotonic()
        writer.write(LENGTH.pack(chunk.nbytes) + chunk.tobytes())
        (n,) = LENGTH.unpack(await reader.readexactly(LENGTH.size))
        await reader.readexactly(n)
        rtts.append(time.monotonic() - t)
        sent += frame
        got += n // 2
    writer.close()
    return {"sent": sent, "got": got, "rtt": rtts}


async def selftest(n_clients: int, seconds: float, *, rate: int = 48000, frame: int = 960) -> dict:
    server = await serve("127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pcm = np.clip(np.rint(example_audio("noisy") * 32768), -32768, 32767).astype(np.int16)
    stalls = []

    async def watch_loop():
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.005)
            now = time.monotonic()
            stalls.append((now, now - last - 0.005))
            last = now

    watcher = asyncio.create_task(watch_loop())
    t_start = time.monotonic()
    results = await asyncio.gather(*[client("127.0.0.1", port, np.roll(pcm, 4800 * i), rate=rate, frame=frame,
                                            seconds=seconds) for i in range(n_clients)])
    watcher.cancel()
    server.close()
    await server.wait_closed()
    rtt = 1000 * np.concatenate([r["rtt"] for r in results])
    return {"clients": n_clients, "seconds": seconds, "frames": len(rtt),
            "exact": all(r["sent"] == r["got"] for r in results),
            "rtt_ms_p50": float(np.percentile(rtt, 50)), "rtt_ms_p99": float(np.percentile(rtt, 99)),
            # after the first second, when every stream's pipeline has been built and is streaming
            "loop_stall_ms_max": 1000 * max((d for t, d in stalls if t > t_start + 1.0), default=0.0)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=7000)
    ap.add_argument("--selftest", type=int, metavar="CLIENTS", help="run this many clients against a local server")
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    if args.selftest:
        r = asyncio.run(selftest(args.selftest, args.seconds))
        print(f"{r['clients']} streams x {r['seconds']:.0f} s, {r['frames']} frames of 20 ms: round trip "
              f"p50 {r['rtt_ms_p50']:.2f} ms, p99 {r['rtt_ms_p99']:.2f} ms; longest event-loop stall (after 1 s) "
              f"{r['loop_stall_ms_max']:.2f} ms; every sample back: {r['exact']}")
        return

    async def run() -> None:
        server = await serve(args.host, args.port)
        print(f"serving on {args.host}:{args.port}")
        async with server:
            await server.serve_forever()

    asyncio.run(run())


if __name__ == "__main__":
    main()
