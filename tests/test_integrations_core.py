"""StreamProcessor and AsyncProcessor: same-length frames, delay truth, format changes, offload."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

import mediacore as mc
from mediacore import errors
from mediacore.integrations import AsyncProcessor, StreamProcessor
from integration_helpers import denoise_gains, to_int16
from signals import example


def passthrough(rate, channels):
    return mc.Pipeline([mc.Gain(sample_rate=rate, gain_db=0.0)])


class Sleepy(mc.Stage):
    """A stage that takes ``sleep_s`` per call: stands in for a heavy model."""

    def __init__(self, *, sample_rate, sleep_s):
        self.sleep_s = sleep_s
        super().__init__(sample_rate=sample_rate)

    def _process_blocks(self, x, meta):
        time.sleep(self.sleep_s)
        return x


def test_same_length_any_frame_size_and_exact_delay():
    sp = StreamProcessor(pipeline_factory=passthrough)
    x = np.random.default_rng(0).standard_normal(48000).astype(np.float32) * 0.1
    sizes = [480, 960, 333, 1, 2400, 17, 480, 101]
    outs, i, k = [], 0, 0
    while i < len(x):
        n = sizes[k % len(sizes)]
        outs.append(sp.process(x[i:i + n], sample_rate=48000))
        assert outs[-1].shape == x[i:i + n].shape
        i += n
        k += 1
    y = np.concatenate(outs)
    assert len(y) == len(x) == sp.stats["samples_in"] == sp.stats["samples_out"]
    # the shortfalls of odd frames are inserted as silence and kept as delay: under one 10 ms frame
    d = sp.delay_samples
    assert 0 < d == sp.stats["padded_samples"] < 480
    # every input sample comes out once, in order; the only other samples are the inserted zeros
    real = y[y != 0]
    assert len(y) - len(real) == d
    np.testing.assert_array_equal(real, x[: len(real)])
    np.testing.assert_array_equal(y[-1000:], x[len(x) - d - 1000: len(x) - d])


def test_whole_frames_add_only_the_pipeline_latency_and_denoise():
    sp = StreamProcessor()
    noisy = example("noisy", 48000)
    y = np.concatenate([sp.process(to_int16(noisy[i:i + 960]), sample_rate=48000)
                        for i in range(0, len(noisy), 960)])
    assert len(y) == len(noisy)
    assert sp.stats["padded_samples"] == 0
    assert sp.delay_samples == sp.pipeline.latency == 1008  # 20 ms denoiser + 1 ms limiter look-ahead
    g = denoise_gains(y, sample_rate=48000)
    assert g["lag"] == sp.delay_samples
    assert g["si_sdr_gain_db"] > 3.0 and g["pause_gain_db"] > 10.0


def test_interleaved_int16_stereo_keeps_channels_apart():
    sp = StreamProcessor(pipeline_factory=passthrough)
    rng = np.random.default_rng(1)
    left = rng.integers(-20000, 20000, 4800).astype(np.int16)
    right = (left // 3).astype(np.int16)
    inter = np.stack([left, right], axis=1).reshape(-1)
    out = np.concatenate([sp.process_interleaved(inter[i:i + 960].tobytes(), sample_rate=48000, num_channels=2)
                          for i in range(0, len(inter), 960)])
    assert out.dtype == np.int16 and len(out) == len(inter)
    np.testing.assert_array_equal(out[0::2], left)
    np.testing.assert_array_equal(out[1::2], right)
    assert sp.stats["clipped_samples"] == 0


def test_clipping_is_counted_not_wrapped():
    sp = StreamProcessor(pipeline_factory=lambda r, c: mc.Pipeline([mc.Gain(sample_rate=r, gain_db=12.0)]))
    pcm = np.full(480, 16384, np.int16)  # -6 dBFS + 12 dB
    out = sp.process_interleaved(pcm, sample_rate=48000, num_channels=1)
    assert (out == 32767).all()
    assert sp.stats["clipped_samples"] == 480


def test_rate_and_channel_change_restart_the_stream():
    sp = StreamProcessor()
    x48 = example("noisy", 48000)[:9600]
    x16 = example("noisy", 16000)[:3200]
    assert sp.process(x48[:4800], sample_rate=48000).shape == (4800,)
    first = sp.pipeline
    assert sp.process(x16[:1600], sample_rate=16000).shape == (1600,)
    assert sp.sample_rate == 16000 and sp.delay_samples == sp.pipeline.latency
    assert sp.process(np.stack([x16[1600:], x16[1600:]]), sample_rate=16000).shape == (2, 1600)
    assert sp.process(x48[4800:], sample_rate=48000).shape == (4800,)
    assert sp.pipeline is first  # reused per format, reset on reuse
    assert sp.stats["format_changes"] == 3
    assert sp.stats["samples_in"] == sp.stats["samples_out"] == 4800 + 1600 + 1600 + 4800
    # each restart drops what was still inside the old pipeline: its latency
    lat48 = first.latency
    lat16 = sp._pipelines[(16000, 1)].latency
    assert sp.stats["discarded_samples"] == lat48 + lat16 + sp._pipelines[(16000, 2)].latency


def test_errors_name_the_adapter():
    sp = StreamProcessor(name="MyHost")
    with pytest.raises(errors.FormatError, match=r"MyHost: expected a whole number of 2-channel samples, got 3"):
        sp.process_interleaved(np.zeros(3, np.int16), sample_rate=48000, num_channels=2)
    with pytest.raises(errors.FormatError, match="MyHost: expected interleaved int16 samples, got dtype float32"):
        sp.process_interleaved(np.zeros(4, np.float32), sample_rate=48000, num_channels=2)
    with pytest.raises(errors.ParameterError, match="MyHost: pass either pipeline_factory or chain options"):
        StreamProcessor(name="MyHost", pipeline_factory=passthrough, agc=False)
    bad = StreamProcessor(name="MyHost", pipeline_factory=lambda r, c: mc.Resample(sample_rate=r,
                                                                                  output_sample_rate=16000))
    with pytest.raises(errors.FormatError, match="must take and give 48000 Hz, got 48000 Hz in, 16000 Hz out"):
        bad.process(np.zeros(480, np.float32), sample_rate=48000)


def _ticker_gap_ms(offload):
    """Largest gap between event-loop ticks while 4 frames of a 40 ms stage are processed."""
    ap = AsyncProcessor(StreamProcessor(pipeline_factory=lambda r, c: Sleepy(sample_rate=r, sleep_s=0.04)),
                        offload=offload)

    async def main():
        gaps, stop = [], False

        async def tick():
            last = time.perf_counter()
            while not stop:
                await asyncio.sleep(0.002)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        t = asyncio.create_task(tick())
        await asyncio.sleep(0.01)
        outs = [await ap.process(np.full(480, k, np.float32) * 0.01, sample_rate=48000) for k in range(4)]
        stop = True
        await t
        return max(gaps) * 1000, outs

    return asyncio.run(main())


def test_offload_keeps_the_event_loop_responsive():
    blocked_ms, _ = _ticker_gap_ms(False)
    free_ms, outs = _ticker_gap_ms(True)
    assert blocked_ms > 35.0  # inline: the loop stalls for the whole frame
    assert free_ms < 20.0      # offloaded: the loop keeps ticking
    for k, y in enumerate(outs):
        np.testing.assert_array_equal(y, np.full(480, k * 0.01, np.float32))


def test_many_streams_in_parallel_keep_per_stream_order():
    noisy = to_int16(example("noisy", 16000))
    streams = [AsyncProcessor(pipeline_factory=passthrough) for _ in range(8)]

    async def run(k, ap):
        x = np.roll(noisy, 160 * k)
        parts = await asyncio.gather(*[ap.process_interleaved(x[i:i + 320], sample_rate=16000, num_channels=1)
                                       for i in range(0, len(x), 320)])
        return x, np.concatenate(parts)

    async def main():
        return await asyncio.gather(*[run(k, ap) for k, ap in enumerate(streams)])

    for x, y in asyncio.run(main()):
        np.testing.assert_array_equal(x, y)  # gathered concurrently, yet frames stay in order


def test_host_packages_are_imported_only_by_their_adapter():
    import subprocess
    import sys

    code = ("import sys, mediacore, mediacore.integrations, mediacore.integrations.rtp, mediacore.cli; "
            "print(sorted(m for m in ('livekit', 'pipecat', 'aiortc') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("adapter, host", [("livekit", "livekit.rtc"), ("pipecat", "pipecat"),
                                           ("aiortc", "aiortc.mediastreams")])
def test_a_missing_host_package_names_the_extra(adapter, host, monkeypatch):
    import importlib
    import sys

    monkeypatch.setitem(sys.modules, host, None)  # makes 'import host' raise ImportError
    monkeypatch.delitem(sys.modules, f"mediacore.integrations.{adapter}", raising=False)
    with pytest.raises(errors.MissingDependencyError, match=r"pip install 'mediacore\[integrations\]'"):
        importlib.import_module(f"mediacore.integrations.{adapter}")
