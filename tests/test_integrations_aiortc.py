"""aiortc: MediacoreTrack on a track received over a real RTCPeerConnection pair on loopback."""

from __future__ import annotations

import asyncio
import fractions

import av
import numpy as np
import pytest

aiortc = pytest.importorskip("aiortc", reason="needs pip install 'mediacore[integrations]'")
from aiortc import RTCConfiguration, RTCPeerConnection  # noqa: E402
from aiortc.mediastreams import MediaStreamTrack  # noqa: E402

import mediacore as mc  # noqa: E402
from mediacore import errors  # noqa: E402
from mediacore.integrations.aiortc import MediacoreTrack  # noqa: E402
from integration_helpers import denoise_gains, to_int16  # noqa: E402
from signals import example, lag_of  # noqa: E402

SECONDS = 3
RATE = 48000
PTIME = 960


class ClipTrack(MediaStreamTrack):
    """Plays a mono int16 clip as s16 stereo 48 kHz 20 ms frames in real time (like a microphone)."""

    kind = "audio"

    def __init__(self, pcm):
        super().__init__()
        self.pcm = pcm
        self.i = 0
        self.t0 = None

    async def recv(self):
        loop = asyncio.get_running_loop()
        if self.t0 is None:
            self.t0 = loop.time()
        await asyncio.sleep(max(0.0, self.t0 + self.i / RATE - loop.time()))
        chunk = self.pcm[self.i: self.i + PTIME]
        if len(chunk) < PTIME:  # keep talking silence after the clip
            chunk = np.concatenate([chunk, np.zeros(PTIME - len(chunk), np.int16)])
        frame = av.AudioFrame.from_ndarray(np.repeat(chunk, 2)[None, :], format="s16", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = RATE, self.i, fractions.Fraction(1, RATE)
        self.i += PTIME
        return frame


class Tee(MediaStreamTrack):
    """Records the frames a track gives (what our wrapper is handed)."""

    kind = "audio"

    def __init__(self, source):
        super().__init__()
        self.source, self.frames = source, []

    async def recv(self):
        f = await self.source.recv()
        self.frames.append(f)
        return f


async def _over_peer_connection(n_frames):
    pcm = to_int16(example("noisy", RATE)[: SECONDS * RATE])
    cfg = RTCConfiguration(iceServers=[])
    sender, receiver = RTCPeerConnection(cfg), RTCPeerConnection(cfg)
    sender.addTrack(ClipTrack(pcm))
    got = asyncio.get_running_loop().create_future()
    receiver.on("track", lambda track: got.set_result(track))
    await sender.setLocalDescription(await sender.createOffer())
    await receiver.setRemoteDescription(sender.localDescription)
    await receiver.setLocalDescription(await receiver.createAnswer())
    await sender.setRemoteDescription(receiver.localDescription)
    remote = await asyncio.wait_for(got, 10)
    tee = Tee(remote)
    track = MediacoreTrack(tee, mix_to_mono=True, agc=False)
    track.warm_up()
    out = [await asyncio.wait_for(track.recv(), 5) for _ in range(n_frames)]
    await sender.close()
    await receiver.close()
    return tee.frames, out, track


def test_over_a_real_peer_connection_denoised_pts_kept_nothing_lost():
    n_frames = SECONDS * RATE // PTIME - 5
    seen, out, track = asyncio.run(_over_peer_connection(n_frames))
    assert len(seen) == len(out) == n_frames
    for a, b in zip(seen, out):
        assert (b.format.name, b.layout.name, b.sample_rate, b.samples) == ("s16", "stereo", RATE, PTIME)
        assert (b.pts, b.time_base) == (a.pts, a.time_base)
    pts = np.array([f.pts for f in out])
    assert out[0].time_base == fractions.Fraction(1, RATE)
    assert (np.diff(pts) == PTIME).all()  # continuous on loopback: no frame lost or repeated
    assert track.stats["samples_in"] == track.stats["samples_out"] == n_frames * PTIME
    assert track.stats["padded_samples"] == 0 and track.stats["clipped_samples"] == 0

    x = np.concatenate([f.to_ndarray().reshape(-1, 2) for f in seen]).astype(np.float32) / 32768
    y = np.concatenate([f.to_ndarray().reshape(-1, 2) for f in out]).astype(np.float32) / 32768
    np.testing.assert_array_equal(y[:, 0], y[:, 1])
    # the decoded input lags the clip by the Opus round trip; the output by that + our declared delay
    noisy = example("noisy", RATE)
    codec_lag = lag_of(noisy[: len(x)], x[:, 0], 4800)
    delay = round(track.delay_ms * RATE / 1000)
    assert delay == track._stream.pipeline.latency
    # scored against what the wrapper was handed (the Opus-decoded clip), not the clip itself
    g = denoise_gains(y[:, 0], sample_rate=RATE, delay=codec_lag + delay, noisy=x[:, 0], noisy_delay=codec_lag,
                      refine=8)
    # (within 4 samples, 83 us: the neural pitch filter's comb moves the correlation peak by up to 3; a lost
    # or repeated block would move it by hundreds)
    assert lag_of(noisy[: len(y)], y[:, 0], 4800) == pytest.approx(codec_lag + delay, abs=4)
    # Opus's own coding distortion is in both and caps SI-SDR (clip vs decoded clip: about 7 dB),
    # so the SI-SDR gain is smaller than without a codec; the noise between words drops by ~20 dB
    assert g["si_sdr_gain_db"] > 1.0, g
    assert g["mag_snr_gain_db"] > 3.0, g
    assert g["pause_gain_db"] > 15.0, g


class FakeSource(MediaStreamTrack):
    kind = "audio"

    def __init__(self, frames):
        super().__init__()
        self.frames = list(frames)

    async def recv(self):
        return self.frames.pop(0)


def _frame(fmt, layout, rate, n, pts, value):
    ch = 1 if layout == "mono" else 2
    planar = fmt.endswith("p")
    dtype = np.int16 if fmt.startswith("s16") else np.float32
    v = int(value * 32767) if dtype is np.int16 else value
    arr = np.full((ch, n) if planar else (1, n * ch), v, dtype)
    f = av.AudioFrame.from_ndarray(arr, format=fmt, layout=layout)
    f.sample_rate, f.pts, f.time_base = rate, pts, fractions.Fraction(1, rate)
    return f


@pytest.mark.parametrize("fmt", ["s16", "s16p", "flt", "fltp"])
def test_formats_layouts_rates_and_sizes_round_trip(fmt):
    plan = [("stereo", 48000, 960), ("stereo", 48000, 480), ("mono", 48000, 441), ("mono", 16000, 320),
            ("stereo", 44100, 882)]
    frames = [_frame(fmt, lay, rate, n, 1000 * k, 0.25) for k, (lay, rate, n) in enumerate(plan)]
    track = MediacoreTrack(FakeSource(frames), offload=False,
                           pipeline_factory=lambda r, c: mc.Pipeline([mc.Gain(sample_rate=r, gain_db=-6.0206)]))

    async def main():
        return [await track.recv() for _ in plan]

    out = asyncio.run(main())
    for f, (lay, rate, n), k in zip(out, plan, range(len(plan))):
        assert (f.format.name, f.layout.name, f.sample_rate, f.samples, f.pts) == (fmt, lay, rate, n, 1000 * k)
    # a -6 dB gain on 0.25: the interior of each whole-frame stream is 0.125
    a = out[0].to_ndarray().astype(np.float64)
    expected = 0.125 * (32768 if fmt.startswith("s16") else 1)
    assert np.allclose(a, expected, rtol=0, atol=1.0 if fmt.startswith("s16") else 1e-6)
    assert track.stats["format_changes"] == 3
    assert track.stats["samples_in"] == track.stats["samples_out"] == sum(n for _, _, n in plan)


def test_rejects_video_and_unknown_formats():
    class Video(MediaStreamTrack):
        kind = "video"

        async def recv(self):
            raise AssertionError

    with pytest.raises(errors.FormatError, match="MediacoreTrack: expected an audio track, got kind 'video'"):
        MediacoreTrack(Video())
    f = av.AudioFrame.from_ndarray(np.zeros((1, 960), np.int32), format="s32", layout="mono")
    f.sample_rate = 48000
    track = MediacoreTrack(FakeSource([f]), offload=False)
    with pytest.raises(errors.FormatError, match="expected an audio frame of format s16, s16p, flt or fltp, got s32"):
        asyncio.run(track.recv())
