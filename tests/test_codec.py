"""Encode / decode stages (mediacore.codec) and byte-exact video copy in
clean_media for mp4 (H.264 + AAC), webm (VP8 / VP9 + Opus) and mkv."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

import mediacore as mc
from mediacore.codec import (AacEncoder, AudioDecoder, EncodedPacket, FlacEncoder, OpusEncoder, PacketPipeline,
                             SimulcastLadder, VideoDecoder, VideoEncoder, VideoScale, mux_packets)
from mediacore.errors import FormatError, ParameterError
from mediacore.io import clean_media, read_audio
from signals import example, lag_of

RATE = 48000


def tone(n: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    t = np.arange(n) / RATE
    rng = np.random.default_rng(seed)
    x = [0.3 * np.sin(2 * np.pi * (440 + 220 * c) * t) + 0.01 * rng.standard_normal(n) for c in range(channels)]
    return np.asarray(x, np.float32)


def snr_db(ref: np.ndarray, est: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / np.sum((ref - est).astype(np.float64) ** 2)))


def image(i: int, w: int = 160, h: int = 96) -> np.ndarray:
    """A smooth moving gradient (codecs reproduce it well)."""
    y, x = np.mgrid[0:h, 0:w]
    r = (128 + 100 * np.sin(2 * np.pi * (x + 3 * i) / w)).astype(np.uint8)
    g = (128 + 100 * np.cos(2 * np.pi * (y + 2 * i) / h)).astype(np.uint8)
    b = np.full_like(r, (i * 7) % 255)
    return np.stack([r, g, b], axis=-1)


def encode_all(enc, x, chunk=None):
    if chunk is None:
        return enc.process(x) + enc.flush()
    out = []
    for i in range(0, x.shape[-1], chunk):
        out += enc.process(x[..., i: i + chunk])
    return out + enc.flush()


# ---------------------------------------------------------------------------
# audio encoders
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("frame_ms, frame", [(10.0, 480), (20.0, 960)])
def test_opus_packets_timing_and_quality(frame_ms, frame):
    x = example("clean")[None, RATE: 2 * RATE].copy()  # 1 s of speech
    enc = OpusEncoder(bitrate_bps=32000, frame_ms=frame_ms, complexity=5)
    assert enc.frame_size == frame
    packets = encode_all(enc, x)
    assert len(packets) == RATE // frame + 1  # + the codec's look-ahead drained by flush
    assert [p.pts for p in packets] == [-312 + k * frame for k in range(len(packets))]
    assert all(p.time_base == Fraction(1, RATE) and p.duration for p in packets)
    kbps = sum(p.size for p in packets[:-1]) * 8 / 1000  # 1 s of packets
    assert 20 < kbps < 45
    dec = AudioDecoder(codec="opus", extradata=enc.extradata)
    y = np.concatenate([dec.process(packets), dec.flush()], axis=1)
    assert abs(y.shape[1] - x.shape[1]) <= frame
    assert lag_of(x[0], y[0], 1000) == 0  # the decoder removes the encoder's pre-skip
    assert snr_db(x[0, 2000:40000], y[0, 2000:40000]) > 5


def test_opus_encode_frame_and_errors():
    enc = OpusEncoder(frame_ms=10)
    pk = enc.encode_frame(tone(480)[0])
    assert pk and pk[0].pts == -312 and pk[0].codec == "libopus"
    with pytest.raises(FormatError, match=r"OpusEncoder: expected frame of 480 or 960 samples at 48000 Hz "
                                          r"\(frame_ms=20 -> 960\), got 441"):
        OpusEncoder().encode_frame(np.zeros(441, np.float32))
    with pytest.raises(ParameterError, match=r"OpusEncoder: expected sample_rate in \(8000, 12000, 16000, 24000, "
                                             r"48000\), got 44100"):
        OpusEncoder(sample_rate=44100)
    with pytest.raises(ParameterError, match=r"OpusEncoder: expected frame_ms in .*got 15"):
        OpusEncoder(frame_ms=15)
    with pytest.raises(ParameterError, match=r"OpusEncoder: expected complexity as an integer in \[0, 10\], got 11"):
        OpusEncoder(complexity=11)
    with pytest.raises(FormatError, match="OpusEncoder: expected 1 channel"):
        OpusEncoder().process(np.zeros((2, 960), np.float32))
    r = repr(OpusEncoder(fec=True, packet_loss_percent=10, application="voip"))
    assert "fec=True" in r and "packet_loss_percent=10" in r and "application='voip'" in r and "frame_ms=20.0" in r


def test_opus_cbr_fec_and_voip_settings_take_effect():
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal((1, RATE))).astype(np.float32)
    cbr = encode_all(OpusEncoder(bitrate_bps=24000, vbr=False), x)
    assert {p.size for p in cbr[:-1]} == {60}  # 24 kbit/s * 20 ms = 60 bytes, every packet
    vbr = encode_all(OpusEncoder(bitrate_bps=24000, vbr=True), x)
    assert len({p.size for p in vbr}) > 3
    # FEC at the same bitrate leaves fewer bits for the primary frame: different bytes, same packet count
    fec = encode_all(OpusEncoder(bitrate_bps=24000, vbr=False, fec=True, packet_loss_percent=20), x)
    assert len(fec) == len(cbr) and [p.data for p in fec] != [p.data for p in cbr]


def test_opus_dtx_leaves_out_silent_frames():
    speech = example("clean")[None, RATE: 2 * RATE]
    x = np.concatenate([speech, np.zeros((1, 2 * RATE), np.float32), speech], axis=1)  # 4 s
    plain = encode_all(OpusEncoder(), x)
    enc = OpusEncoder(dtx=True)
    assert enc.extradata[:8] == b"OpusHead" and int.from_bytes(enc.extradata[10:12], "little") == 312
    dtx = encode_all(enc, x)
    assert len(plain) == 201 and [p.pts for p in plain] == [-312 + 960 * k for k in range(201)]

    def in_silence(packets):  # packets wholly inside the silent 2 s (after a 200 ms hangover)
        return [p for p in packets if 1.2 * RATE <= p.pts and p.pts + 960 <= 3.0 * RATE]

    assert len(in_silence(plain)) == 89
    assert 3 <= len(in_silence(dtx)) <= 5  # a comfort-noise update every 400 ms
    gaps = np.diff([p.pts for p in in_silence(dtx)])
    assert all(g >= 0.38 * RATE for g in gaps)
    # speech frames are all sent, pts on the same grid, and decode as well as without DTX
    in_speech = [p for p in dtx if p.pts + 960 <= RATE]
    assert [p.pts for p in in_speech] == [-312 + 960 * k for k in range(len(in_speech))] and len(in_speech) == 50
    assert all(p.pts % 960 == 648 for p in dtx)
    y = AudioDecoder(codec="opus", extradata=enc.extradata).process(in_speech)
    assert snr_db(speech[0, 2000:40000], y[0, 2000:40000]) > 5
    assert dtx[-1].pts + dtx[-1].duration == x.shape[1]  # flush brings out every input sample


@pytest.mark.parametrize("chunk", [1, 17, 509, 4096])
@pytest.mark.parametrize("make", [lambda: OpusEncoder(frame_ms=10), lambda: OpusEncoder(dtx=True, num_channels=2),
                                  lambda: AacEncoder(num_channels=2), lambda: FlacEncoder(num_channels=2)],
                         ids=["opus", "opus_dtx", "aac", "flac"])
def test_encoders_chunk_invariant_and_reset_reproducible(make, chunk):
    enc = make()
    x = tone(6000, enc.num_channels)
    whole = encode_all(enc, x)  # flush resets
    assert encode_all(enc, x, chunk) == whole
    enc.process(tone(3000, enc.num_channels, seed=9))
    enc.reset()
    assert encode_all(enc, x) == whole


def test_aac_and_flac():
    x = tone(RATE + 500, 2)
    enc = AacEncoder(num_channels=2, bitrate_bps=128000)
    packets = encode_all(enc, x)
    assert [p.pts for p in packets[:3]] == [-1024, 0, 1024] and enc.frame_size == 1024
    dec = AudioDecoder(codec="aac", num_channels=2, extradata=enc.extradata)
    y = np.concatenate([dec.process(packets), dec.flush()], axis=1)
    y = y[:, 1024:]  # AAC priming
    assert abs(y.shape[1] - x.shape[1]) <= 1024
    assert snr_db(x[:, 2048:40000], y[:, 2048:40000]) > 15
    # FLAC: lossless at 16 bits, the short last frame says exactly how long the stream is
    enc = FlacEncoder(num_channels=2, compression_level=8)
    packets = encode_all(enc, x)
    assert packets[-1].pts + packets[-1].duration == x.shape[1]
    dec = AudioDecoder(codec="flac", num_channels=2, extradata=enc.extradata)
    y = np.concatenate([dec.process(packets), dec.flush()], axis=1)
    np.testing.assert_array_equal(y, np.clip(np.rint(x * 32768), -32768, 32767) / 32768)


def test_packet_pipeline_packets_to_packets():
    x = tone(RATE)
    src = encode_all(OpusEncoder(frame_ms=20), x)
    enc = OpusEncoder(frame_ms=20)
    pp = PacketPipeline(AudioDecoder(codec="opus"), mc.Gain(sample_rate=RATE, gain_db=-6.0), enc)
    out = []
    for p in src:  # one packet at a time, as from the network
        out += pp.process(p)
    out += pp.flush()
    assert all(isinstance(p, EncodedPacket) for p in out)
    assert abs(len(out) - len(src)) <= 1
    y = np.concatenate([AudioDecoder(codec="opus").process(out)], axis=1)
    level = 20 * np.log10(np.std(y[0, 4000:40000]) / np.std(x[0, 4000:40000]))
    assert level == pytest.approx(-6.0, abs=1.0)
    with pytest.raises(FormatError, match="PacketPipeline: stages output 16000 Hz, OpusEncoder expects 48000 Hz"):
        PacketPipeline(AudioDecoder(codec="opus"), mc.Resample(sample_rate=RATE, output_sample_rate=16000),
                       OpusEncoder())


# ---------------------------------------------------------------------------
# video
# ---------------------------------------------------------------------------


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255 ** 2 / mse))


@pytest.mark.parametrize("codec", ["vp8", "vp9", "h264", "av1"])
def test_video_encoder_realtime_keyframes_and_decode(codec):
    enc = VideoEncoder(codec=codec, width=160, height=96, fps=30, bitrate_bps=400_000, keyframe_interval_frames=5)
    packets = []
    per_frame = []
    for i in range(12):
        pk = enc.process(image(i))
        per_frame.append(len(pk))
        packets += pk
    packets += enc.flush()
    assert per_frame == [1] * 12  # real time: each frame's packet comes out with it (no look-ahead)
    assert len(packets) == 12
    assert [p.pts for p in packets] == [3000 * i for i in range(12)]  # 90 kHz clock at 30 fps
    assert [i for i, p in enumerate(packets) if p.is_keyframe] == [0, 5, 10]
    dec = VideoDecoder(codec=codec)
    frames = dec.process(packets) + dec.flush()
    assert len(frames) == 12 and (frames[0].width, frames[0].height) == (160, 96)
    assert psnr(frames[6].to_ndarray(format="rgb24"), image(6)) > 25


def test_video_encoder_errors():
    with pytest.raises(ParameterError,
                       match="VideoEncoder: expected even width and height for 4:2:0 video, got 161x96"):
        VideoEncoder(codec="vp8", width=161, height=96)
    with pytest.raises(ParameterError,
                       match=r"VideoEncoder: expected codec in \('vp8', 'vp9', 'h264', 'av1'\), got 'hevc'"):
        VideoEncoder(codec="hevc", width=160, height=96)
    with pytest.raises(ParameterError, match=r"VideoEncoder: expected speed as an integer in \[0, 9\], got 12"):
        VideoEncoder(codec="vp9", width=160, height=96, speed=12)
    enc = VideoEncoder(codec="vp8", width=160, height=96)
    with pytest.raises(FormatError, match="VideoEncoder: expected frames of 160x96, got 320x192 .insert VideoScale."):
        enc.process(image(0, 320, 192))
    assert repr(enc).startswith("VideoEncoder(codec='vp8', width=160, height=96, fps=30")


def test_video_scale():
    sc = VideoScale(width=80, height=48, pixel_format="yuv420p", interpolation="area")
    f = sc.process(image(3))
    assert (f.width, f.height, f.format.name) == (80, 48, "yuv420p")
    big = av.VideoFrame.from_ndarray(image(3), format="rgb24").reformat(width=80, height=48, format="rgb24",
                                                                         interpolation="AREA")
    assert psnr(f.to_ndarray(format="rgb24"), big.to_ndarray()) > 35
    assert repr(sc) == "VideoScale(width=80, height=48, pixel_format='yuv420p', interpolation='AREA')"
    with pytest.raises(ParameterError, match="VideoScale: expected an FFmpeg pixel format"):
        VideoScale(width=80, height=48, pixel_format="nope")


def test_simulcast_ladder():
    ladder = SimulcastLadder(codec="vp8", width=320, height=192, fps=15, bitrate_bps=600_000,
                             keyframe_interval_frames=4)
    assert [(n, w, h) for n, w, h, _b in ladder.layers] == [("f", 320, 192), ("h", 160, 96), ("q", 80, 48)]
    out = {"f": [], "h": [], "q": []}
    for i in range(8):
        for k, v in ladder.process(image(i, 320, 192)).items():
            out[k] += v
    for k, v in ladder.flush().items():
        out[k] += v
    for name, packets in out.items():
        assert len(packets) == 8 and all(p.meta["layer"] == name for p in packets)
        assert [i for i, p in enumerate(packets) if p.is_keyframe] == [0, 4]  # aligned across layers
    size = {k: sum(p.size for p in v) for k, v in out.items()}
    assert size["f"] > size["h"] > size["q"]
    dims = {k: (VideoDecoder(codec="vp8").process(v)[0].width) for k, v in out.items()}
    assert dims == {"f": 320, "h": 160, "q": 80}


def annexb_to_avcc(data: bytes) -> bytes:
    import re

    starts = [m.start() for m in re.finditer(b"\x00\x00\x01", data)]
    out = b""
    for i, s in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(data)
        nal = data[s + 3: end]
        if i + 1 < len(starts) and nal.endswith(b"\x00"):
            nal = nal[:-1]  # the leading zero of the next 4-byte start code
        out += len(nal).to_bytes(4, "big") + nal
    return out


def test_mux_packets_files_hold_the_exact_packets(tmp_path):
    x = tone(RATE)
    for ext, vcodec, aenc in ((".webm", "vp9", OpusEncoder()), (".mp4", "h264", AacEncoder())):
        venc = VideoEncoder(codec=vcodec, width=160, height=96, fps=10, global_header=True)
        vpk = [p for i in range(10) for p in venc.process(image(i))]
        extradata = venc.extradata
        vpk += venc.flush()
        apk = encode_all(aenc, x)
        path = tmp_path / f"out{ext}"
        mux_packets(path, [(venc, vpk), (aenc, apk)])
        with av.open(str(path)) as c:
            v = c.streams.video[0]
            assert v.codec_context.name == {"vp9": "vp9", "h264": "h264"}[vcodec]
            got = [bytes(p) for p in c.demux(v) if p.size]
        # mp4 stores H.264 with length prefixes instead of Annex B start codes; same NAL units
        want = [annexb_to_avcc(p.data) if ext == ".mp4" else p.data for p in vpk]
        assert got == want
        if vcodec == "h264":
            assert extradata  # avcC for mp4
        y, sr = read_audio(path)
        assert sr == RATE and abs(y.shape[1] - RATE) <= 1024
        assert not [f for f in tmp_path.iterdir() if ".part" in f.name]


# ---------------------------------------------------------------------------
# recordings: video copied bit for bit, audio within one codec frame
# ---------------------------------------------------------------------------


def make_recording(path, vcodec, acodec, *, seconds=2.0, fps=10, audio_streams=1, audio_start=0):
    n = int(seconds * RATE)
    with av.open(str(path), "w") as oc:
        oc.metadata["title"] = "standup"
        vs = oc.add_stream(vcodec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = 160, 96, "yuv420p"
        streams = []
        for k in range(audio_streams):
            a = oc.add_stream(acodec, rate=RATE)
            a.layout = "mono"
            a.metadata["language"] = ["eng", "deu"][k]
            a.codec_context.open()
            streams.append(a)
        for i in range(int(seconds * fps)):
            vf = av.VideoFrame.from_ndarray(image(i), format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, fps)
            oc.mux(vs.encode(vf))
        oc.mux(vs.encode(None))
        for k, a in enumerate(streams):
            x = tone(n, seed=k) / (k + 1)
            cc = a.codec_context
            fs = cc.frame_size or 1024
            from mediacore.io._av import float_to_frame

            for i in range(0, n, fs):
                f = float_to_frame(x[:, i: i + fs], cc.format.name, "mono", RATE)
                f.pts, f.time_base = audio_start + i, Fraction(1, RATE)
                oc.mux(a.encode(f))
            oc.mux(a.encode(None))


def video_packets(path):
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [(bytes(p), p.pts * s.time_base, p.is_keyframe) for p in c.demux(s) if p.size]


def first_audio_pts_s(path, k=0):
    with av.open(str(path)) as c:
        s = c.streams.audio[k]
        for frame in c.decode(s):
            return float(frame.pts * s.time_base)


def chain(sr, ch):
    return mc.default_chain(sample_rate=sr, num_channels=ch, denoise="dsp")


@pytest.mark.parametrize("ext, vcodec, acodec, frame", [
    (".mp4", "libx264", "aac", 1024),
    (".webm", "libvpx", "libopus", 960),
    (".webm", "libvpx-vp9", "libopus", 960),
    (".mkv", "libx264", "libopus", 960),
])
def test_clean_recording_video_bit_exact_audio_within_one_frame(tmp_path, ext, vcodec, acodec, frame):
    src, out = tmp_path / f"in{ext}", tmp_path / f"out{ext}"
    make_recording(src, vcodec, acodec, audio_streams=2 if ext != ".webm" else 1)
    rep = clean_media(src, out, chain)
    assert rep.video_streams_copied == 1
    vin, vout = video_packets(src), video_packets(out)
    assert len(vin) == 20 and vout == vin  # bytes, timestamps and keyframe flags
    for k in range(len(rep.audio_streams)):
        x, _ = read_audio(src, stream=k)
        y, _ = read_audio(out, stream=k)
        assert abs(y.shape[1] - x.shape[1]) <= frame
        assert abs(first_audio_pts_s(out, k) - first_audio_pts_s(src, k)) <= frame / RATE
        assert rep.audio_streams[k].output_codec == {"aac": "aac", "libopus": "libopus"}[acodec]
    with av.open(str(out)) as c:
        assert c.metadata.get("title") == "standup"
        assert [s.metadata.get("language") for s in c.streams.audio] == ["eng", "deu"][: len(rep.audio_streams)]


def test_clean_recording_with_chosen_codec(tmp_path):
    src = tmp_path / "in.mkv"
    make_recording(src, "libx264", "aac")
    rep = clean_media(src, tmp_path / "out.mkv", chain, audio_codec="opus", bitrate="48k")
    assert rep.audio_codec == "libopus" and rep.audio_streams[0].bitrate == 48000
    assert video_packets(tmp_path / "out.mkv") == video_packets(src)
    x, _ = read_audio(src)
    y, _ = read_audio(tmp_path / "out.mkv")
    assert abs(y.shape[1] - x.shape[1]) <= 1024


def test_process_frame_starts_the_clock_at_the_frame_pts():
    enc = OpusEncoder(frame_ms=10)
    pk = enc.process_frame(mc.AudioFrame(tone(480)[0], RATE, pts=48000))
    pk += enc.process_frame(mc.AudioFrame(tone(480)[0], RATE, pts=48480))
    assert [p.pts for p in pk] == [48000 - 312, 48480 - 312]
    with pytest.raises(FormatError, match="OpusEncoder: expected sample_rate 48000, got 16000"):
        enc.process_frame(mc.AudioFrame(np.zeros(160, np.float32), 16000))


def test_mux_packets_dtx_opus(tmp_path):
    speech = example("clean")[None, RATE: 2 * RATE]
    x = np.concatenate([speech, np.zeros((1, RATE), np.float32)], axis=1)
    enc = OpusEncoder(dtx=True)
    packets = encode_all(enc, x)
    mux_packets(tmp_path / "dtx.webm", [(enc, packets)])
    with av.open(str(tmp_path / "dtx.webm")) as c:
        got = [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]
    assert got == [p.data for p in packets] and len(packets) < 75


def test_clean_recording_with_empty_audio_track(tmp_path):
    src = tmp_path / "in.mkv"
    with av.open(str(src), "w") as oc:
        vs = oc.add_stream("libx264", rate=10)
        vs.width, vs.height, vs.pix_fmt = 160, 96, "yuv420p"
        a = oc.add_stream("libopus", rate=RATE)
        a.layout = "mono"
        a.codec_context.open()
        for i in range(10):
            vf = av.VideoFrame.from_ndarray(image(i), format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, 10)
            oc.mux(vs.encode(vf))
        oc.mux(vs.encode(None))
    with pytest.raises(FormatError, match=r"in.mkv: audio stream #1 is empty: expected at least 1 sample, got 0"):
        clean_media(src, tmp_path / "out.mkv", chain)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mkv"]  # nothing partial left


@pytest.mark.parametrize("ext, vcodec, acodec, frame", [(".mp4", "libx264", "aac", 1024),
                                                       (".webm", "libvpx", "libopus", 960)])
def test_clean_recording_keeps_a_late_audio_start(tmp_path, ext, vcodec, acodec, frame):
    src, out = tmp_path / f"in{ext}", tmp_path / f"out{ext}"
    make_recording(src, vcodec, acodec, audio_start=int(0.37 * RATE))  # audio begins 370 ms after the video
    start_in = first_audio_pts_s(src)
    assert start_in == pytest.approx(0.37, abs=0.03)  # codec priming and the container's clock shift it a bit
    rep = clean_media(src, out, chain)
    assert abs(first_audio_pts_s(out) - start_in) <= frame / RATE
    assert abs(rep.audio_streams[0].start_time_s - start_in) <= frame / RATE
    assert video_packets(out) == video_packets(src)


def test_video_packet_pipeline_transcodes_and_feeds_a_ladder():
    enc = VideoEncoder(codec="vp8", width=160, height=96, fps=10, keyframe_interval_frames=5)
    src = [p for i in range(10) for p in enc.process(image(i))] + enc.flush()
    pp = PacketPipeline(VideoDecoder(codec="vp8"), VideoScale(width=80, height=48),
                        VideoEncoder(codec="h264", width=80, height=48, fps=10, keyframe_interval_frames=5))
    out = []
    for p in src:
        out += pp.process(p)
    out += pp.flush()
    assert len(out) == 10 and [i for i, p in enumerate(out) if p.is_keyframe] == [0, 5]
    dec = VideoDecoder(codec="h264")
    frames = dec.process(out) + dec.flush()
    assert len(frames) == 10 and (frames[0].width, frames[0].height) == (80, 48)
    ladder = PacketPipeline(VideoDecoder(codec="vp8"), None,
                            SimulcastLadder(codec="vp9", width=160, height=96, fps=10, bitrate_bps=300_000))
    got = ladder.process(src) + ladder.flush()
    assert {p.meta["layer"] for p in got} == {"f", "h", "q"} and len(got) == 30
    with pytest.raises(ParameterError, match="PacketPipeline: expected VideoEncoder or SimulcastLadder after "
                                             "VideoDecoder, got OpusEncoder"):
        PacketPipeline(VideoDecoder(codec="vp8"), None, OpusEncoder())


def test_opus_in_band_fec_recovers_lost_frames():
    from mediacore.codec._libopus import LibOpusDecoder

    x = example("clean")[None, : 4 * RATE]

    def recovered_snr_db(fec: bool) -> float:
        packets = encode_all(OpusEncoder(fec=fec, packet_loss_percent=20, bitrate_bps=32000), x)
        ref, dec = LibOpusDecoder(RATE, 1), LibOpusDecoder(RATE, 1)
        lost = set(range(10, len(packets) - 2, 5))  # every 5th packet lost
        num = err = 0.0
        for k, p in enumerate(packets):
            r = ref.decode(p.data, 960)
            if k in lost:  # recover it from the next packet's LBRR copy (falls back to PLC without one)
                y = dec.decode(packets[k + 1].data, 960, fec=True)
                num += float(np.sum(r.astype(np.float64) ** 2))
                err += float(np.sum((r - y).astype(np.float64) ** 2))
            else:
                dec.decode(p.data, 960)
        return 10 * np.log10(num / err)

    with_fec, without = recovered_snr_db(True), recovered_snr_db(False)
    assert with_fec > 10.0 and without < 6.0  # measured: 15.4 dB vs 3.3 dB


def test_decoders_name_bad_input():
    enc = AacEncoder()
    bad = EncodedPacket(b"\xff" * 50, 0, 0, 1024, Fraction(1, RATE), True, "aac")
    with pytest.raises(FormatError, match="AudioDecoder: aac packet at pts 0 does not decode"):
        AudioDecoder(codec="aac", extradata=enc.extradata).process(bad)
    with pytest.raises(FormatError, match="VideoDecoder: h264 packet at pts 0 does not decode"):
        VideoDecoder(codec="h264").process(bad)
    with pytest.raises(ParameterError, match="AudioDecoder: expected a codec FFmpeg can decode, got 'nope'"):
        AudioDecoder(codec="nope")
    with pytest.raises(FormatError, match="AudioDecoder: expected EncodedPacket, got bytes"):
        AudioDecoder(codec="opus").process([b"x"])


def test_video_encoder_leaves_the_callers_frame_alone():
    f = av.VideoFrame.from_ndarray(image(0), format="rgb24").reformat(format="yuv420p")
    f.pts, f.time_base = 777, Fraction(1, 1000)
    enc = VideoEncoder(codec="h264", width=160, height=96, fps=25)
    pk = enc.process(f) + enc.process(f)
    assert (f.pts, f.time_base) == (777, Fraction(1, 1000))
    assert [p.pts for p in pk] == [0, 3600]  # the encoder's own 25 fps clock on 90 kHz
