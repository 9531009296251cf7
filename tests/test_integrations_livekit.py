"""LiveKit: MediacoreProcessor inside the real livekit.rtc AudioStream and livekit-agents options."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

rtc = pytest.importorskip("livekit.rtc", reason="needs pip install 'mediacore[integrations]'")

from mediacore.integrations.livekit import MediacoreProcessor  # noqa: E402
from integration_helpers import denoise_gains, to_int16  # noqa: E402
from signals import example  # noqa: E402

SECONDS = 3


class Recording(MediacoreProcessor):
    """Keeps the frames LiveKit handed over and what we gave back."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.seen, self.given = [], []

    def _process(self, frame):
        out = super()._process(frame)
        self.seen.append(np.frombuffer(frame.data, np.int16).copy())
        self.given.append(np.frombuffer(out.data, np.int16).copy())
        return out


async def _through_audio_stream(rate, frame_ms, channels, **chain_options):
    """Send 3 s of the noisy example through AudioSource -> LocalAudioTrack -> AudioStream(noise_cancellation=...)."""
    source = rtc.AudioSource(rate, channels, queue_size_ms=100)
    track = rtc.LocalAudioTrack.create_audio_track("mic", source)
    proc = Recording(sample_rate=rate, num_channels=channels, **chain_options)
    stream = rtc.AudioStream.from_track(track=track, sample_rate=rate, num_channels=channels,
                                        frame_size_ms=frame_ms, noise_cancellation=proc)
    x = to_int16(example("noisy", rate)[: SECONDS * rate])
    n = rate * frame_ms // 1000

    async def feed():
        for i in range(0, len(x), n):
            pcm = np.repeat(x[i:i + n], channels)  # the same signal on every channel
            await source.capture_frame(rtc.AudioFrame(pcm.tobytes(), rate, channels, n))

    got = []

    async def read():
        async for ev in stream:
            f = ev.frame
            assert (f.sample_rate, f.num_channels, f.samples_per_channel) == (rate, channels, n)
            got.append(np.frombuffer(f.data, np.int16).copy())
            if len(got) * n >= len(x):
                break

    feeder = asyncio.create_task(feed())
    await asyncio.wait_for(read(), 30)
    await feeder
    await stream.aclose()
    return x, proc, np.concatenate(got).reshape(-1, channels)


def _run_both():
    async def main():
        return await asyncio.gather(_through_audio_stream(48000, 10, 1, agc=False),
                                    _through_audio_stream(24000, 50, 2))
    return asyncio.run(main())


@pytest.fixture(scope="module")
def streams():
    return _run_both()


@pytest.mark.parametrize("which", [0, 1], ids=["48k_mono_10ms_no_agc", "24k_stereo_50ms_agents_default"])
def test_audio_stream_noise_cancellation_denoises_with_exact_accounting(streams, which):
    x, proc, out = streams[which]
    rate, channels = (48000, 1) if which == 0 else (24000, 2)
    seen = np.concatenate(proc.seen).reshape(-1, channels)
    given = np.concatenate(proc.given).reshape(-1, channels)
    # LiveKit delivers exactly our frames; nothing lost or duplicated on our side
    np.testing.assert_array_equal(out, given[: len(out)])
    assert proc.stats["samples_in"] == proc.stats["samples_out"] == len(seen)
    assert proc.stats["padded_samples"] == 0 and proc.stats["clipped_samples"] == 0
    # what LiveKit handed over is the input after its own leading silence (whole 10 ms, if any)
    lead = int(np.argmax(seen[:, 0] != 0))
    assert lead % (rate // 100) == 0
    np.testing.assert_array_equal(seen[lead:, 0], x[: len(seen) - lead])
    np.testing.assert_array_equal(seen[:, 0], seen[:, -1])
    # output lags the input by exactly our declared delay, and is denoised
    delay = proc._stream.delay_samples
    assert proc.delay_ms == pytest.approx(1000 * delay / rate)
    assert delay == proc._stream.pipeline.latency
    for c in range(channels):
        g = denoise_gains(given[:, c].astype(np.float32) / 32768, sample_rate=rate, delay=lead + delay)
        assert g["si_sdr_gain_db"] > 3.0, g
        assert g["mag_snr_gain_db"] > 3.0, g
        # 3 s, less LiveKit's leading silence: few pauses, and with AGC they are still being levelled
        assert g["pause_gain_db"] > (10.0 if which == 0 else 3.0), g
    # and it is exactly what the processor gives offline for the frames LiveKit handed over
    ref = MediacoreProcessor(**({"agc": False} if which == 0 else {}))
    n = len(proc.seen[0]) // channels
    again = [np.frombuffer(ref._process(rtc.AudioFrame(f.tobytes(), rate, channels, n)).data, np.int16)
             for f in proc.seen]
    np.testing.assert_array_equal(np.concatenate(again).reshape(-1, channels), given)


def test_changing_frame_sizes_rates_and_channels_keep_frame_shape():
    proc = MediacoreProcessor(sample_rate=48000)
    rng = np.random.default_rng(0)
    plan = [(48000, 1, 480)] * 3 + [(48000, 1, 960), (48000, 1, 441), (16000, 1, 160), (44100, 2, 441),
                                    (24000, 1, 1200), (48000, 1, 480)]
    total = 0
    for rate, ch, n in plan:
        pcm = rng.integers(-3000, 3000, n * ch).astype(np.int16)
        f = rtc.AudioFrame(pcm.tobytes(), rate, ch, n, userdata={"k": n})
        o = proc._process(f)
        assert isinstance(o, rtc.AudioFrame)
        assert (o.sample_rate, o.num_channels, o.samples_per_channel, o.userdata) == (rate, ch, n, {"k": n})
        total += n
    assert proc.stats["samples_in"] == proc.stats["samples_out"] == total
    assert proc.stats["format_changes"] == 4


def test_enabled_close_and_agents_options():
    proc = MediacoreProcessor()
    assert isinstance(proc, rtc.FrameProcessor)
    assert not callable(proc)  # livekit-agents would take a callable for a selector
    pcm = np.arange(480, dtype=np.int16)
    f = rtc.AudioFrame(pcm.tobytes(), 48000, 1, 480)
    proc.enabled = False
    assert proc._process(f) is f
    proc.enabled = True
    assert proc._process(f) is not f
    proc._on_stream_info_updated(room_name="r", participant_identity="p", publication_sid="TR_1")
    assert proc.stream_info["publication_sid"] == "TR_1" and proc.stats["frames"] == 0
    proc._close()
    assert not proc.enabled

    room_io = pytest.importorskip("livekit.agents.voice.room_io")
    opts = room_io.AudioInputOptions(noise_cancellation=MediacoreProcessor())
    assert isinstance(opts.noise_cancellation, rtc.FrameProcessor) and not callable(opts.noise_cancellation)


def test_livekit_agents_room_input_streams_through_our_processor():
    """livekit-agents' own room input builds the AudioStream with the processor from AudioInputOptions."""
    from types import SimpleNamespace

    # an internal class of livekit-agents 1.x (the test extra pins <2): the path RoomIO takes
    from livekit.agents.voice.room_io._input import _ParticipantAudioInputStream
    room_io = pytest.importorskip("livekit.agents.voice.room_io")

    async def main():
        opts = room_io.AudioInputOptions(noise_cancellation=MediacoreProcessor(sample_rate=24000))
        proc = opts.noise_cancellation
        # what RoomIO does with AudioInputOptions, minus the server connection
        inp = _ParticipantAudioInputStream(rtc.Room(), sample_rate=opts.sample_rate, num_channels=opts.num_channels,
                                           noise_cancellation=opts.noise_cancellation,
                                           frame_size_ms=opts.frame_size_ms, pre_connect_audio_handler=None)
        source = rtc.AudioSource(opts.sample_rate, 1, queue_size_ms=100)
        track = rtc.LocalAudioTrack.create_audio_track("mic", source)
        stream = inp._create_stream(track, SimpleNamespace(identity="caller", track_publications={}))
        x = to_int16(example("noisy", 24000)[:24000])

        async def feed():
            for i in range(0, len(x), 240):
                await source.capture_frame(rtc.AudioFrame(x[i:i + 240].tobytes(), 24000, 1, 240))

        feeder = asyncio.create_task(feed())
        n = 0
        async for ev in stream:
            assert ev.frame.samples_per_channel == 24000 * opts.frame_size_ms // 1000
            n += ev.frame.samples_per_channel
            if n >= len(x):
                break
        await feeder
        await stream.aclose()
        return proc, n

    proc, n = asyncio.run(main())
    assert n == 24000
    assert proc.stats["samples_in"] == proc.stats["samples_out"] == n and proc.stats["frames"] == 20
