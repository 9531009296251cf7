"""Tests of mediacore.io: probe / read_audio / write_audio / clean_media.

All media is generated here (PyAV / soundfile) in temporary directories."""

from __future__ import annotations

import os
from fractions import Fraction

import av
import numpy as np
import pytest
import soundfile as sf

from mediacore.errors import FormatError, MediaError, ParameterError
from mediacore.io import clean_media, probe, read_audio, write_audio
from mediacore.io._av import float_to_frame
from media_files import GENERATED, make_every_format, make_file

RATE = 48000
CODEC_FRAME = {"aac": 1024, "opus": 960, "mp3": 1152, "libopus": 960}


# ---------------------------------------------------------------------------
# signals and media
# ---------------------------------------------------------------------------


def tone_noise(n: int, rate: int = RATE, channels: int = 2, seed: int = 0) -> np.ndarray:
    """Tones (different per channel) + a little noise, peak ~0.5."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / rate
    chans = [
        0.3 * np.sin(2 * np.pi * (440 + 110 * c) * t) + 0.1 * np.sin(2 * np.pi * 1234 * t + c) + 0.02 * rng.standard_normal(n)
        for c in range(channels)
    ]
    return np.asarray(chans, dtype=np.float32)


def make_video(path, vcodec, acodec, *, seconds=2.0, channels=2, audio_streams=1, fps=25, title=None):
    """Small test video: 64x48 frames + `audio_streams` audio streams (stream k scaled by 1/(k+1))."""
    n = int(seconds * RATE)
    x = tone_noise(n, channels=channels, seed=1)
    layout = "stereo" if channels == 2 else "mono"
    with av.open(str(path), "w") as oc:
        if title:
            oc.metadata["title"] = title
        vs = oc.add_stream(vcodec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        astreams = []
        for k in range(audio_streams):
            a = oc.add_stream(acodec, rate=RATE)
            a.layout = layout
            a.metadata["language"] = ["eng", "fra", "deu"][k]
            a.codec_context.open()
            astreams.append(a)
        for i in range(int(seconds * fps)):
            img = np.full((48, 64, 3), (i * 9) % 255, np.uint8)
            img[:, i % 64] = 255
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, fps)
            oc.mux(vs.encode(vf))
        oc.mux(vs.encode(None))
        for k, a in enumerate(astreams):
            cc = a.codec_context
            fs = cc.frame_size or 1024
            for i in range(0, n, fs):
                f = float_to_frame(x[:, i : i + fs] / (k + 1), cc.format.name, layout, RATE)
                f.pts, f.time_base = i, Fraction(1, RATE)
                oc.mux(a.encode(f))
            oc.mux(a.encode(None))
    return x


def video_packets(path):
    """(bytes, pts seconds, dts seconds, keyframe) of every video packet."""
    out = []
    with av.open(str(path)) as c:
        for s in c.streams.video:
            for p in c.demux(s):
                if p.size:
                    tb = p.time_base
                    out.append((bytes(p), p.pts * tb, None if p.dts is None else p.dts * tb, p.is_keyframe))
    return out


def first_audio_time(path, stream=0):
    with av.open(str(path)) as c:
        for frame in c.decode(c.streams.audio[stream]):
            return float(frame.time)


def xcorr_lag(ref: np.ndarray, y: np.ndarray) -> int:
    """Lag of y relative to ref (positive: y is late), by FFT cross-correlation of channel 0."""
    m = min(ref.shape[1], y.shape[1])
    a, b = ref[0, :m].astype(np.float64), y[0, :m].astype(np.float64)
    c = np.fft.irfft(np.fft.rfft(b, 2 * m) * np.conj(np.fft.rfft(a, 2 * m)))
    k = int(np.argmax(c))
    return k if k < m else k - 2 * m


def snr_db(ref: np.ndarray, y: np.ndarray) -> float:
    m = min(ref.shape[1], y.shape[1])
    e = ref[:, :m] - y[:, :m]
    return float(10 * np.log10(np.sum(ref[:, :m] ** 2) / max(np.sum(e**2), 1e-20)))


# ---------------------------------------------------------------------------
# pipelines
# ---------------------------------------------------------------------------


class DelayPipeline:
    """Output = input delayed by `latency` samples (prepends zeros), buffers a little."""

    def __init__(self, sample_rate: int, num_channels: int, latency: int = 0) -> None:
        self.output_sample_rate = sample_rate
        self.latency = latency
        self._buf = np.zeros((num_channels, latency), np.float32)

    def process(self, x: np.ndarray) -> np.ndarray:
        y = np.concatenate([self._buf, x], axis=1)
        self._buf = y[:, x.shape[1] :]
        return y[:, : x.shape[1]]

    def flush(self) -> np.ndarray:
        tail, self._buf = self._buf, self._buf[:, :0]
        return tail


def identity(sr, ch):
    return DelayPipeline(sr, ch, 0)


def delay480(sr, ch):
    return DelayPipeline(sr, ch, 480)


class FailingPipeline(DelayPipeline):
    def __init__(self, sr, ch, exc):
        super().__init__(sr, ch)
        self.calls, self.exc = 0, exc

    def process(self, x):
        self.calls += 1
        if self.calls == 3:
            raise self.exc
        return super().process(x)


def leftovers(directory) -> list[str]:
    return sorted(n for n in os.listdir(directory) if ".part" in n)


# ---------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("media")
    n = 2 * RATE + 77  # deliberately not a multiple of any codec frame
    x = tone_noise(n)
    files = {"x": x, "n": n, "dir": d}
    files["wav"] = d / "in.wav"
    write_audio(files["wav"], x, RATE)
    files["mp4"] = d / "in.mp4"
    files["mp4_x"] = make_video(files["mp4"], "libx264", "aac", title="test clip")
    files["webm"] = d / "in.webm"
    files["webm_x"] = make_video(files["webm"], "libvpx-vp9", "libopus", title="webm clip")
    files["mp4_2a"] = d / "two_audio.mp4"
    make_video(files["mp4_2a"], "libx264", "aac", seconds=1.0, channels=1, audio_streams=2)
    files["noaudio"] = d / "noaudio.mp4"
    make_video(files["noaudio"], "libx264", "aac", seconds=0.4, audio_streams=0)
    return files


# ---------------------------------------------------------------------------
# read / write
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, codec, tol",
    [("a.wav", None, 0.5 / 32768 + 1e-7), ("f.wav", "float", 0.0), ("a.flac", None, 0.5 / 32768 + 1e-7),
     ("b24.wav", "pcm_s24le", 0.5 / 2**23 + 1e-7)],
)
def test_lossless_round_trip_exact(tmp_path, name, codec, tol):
    n = 44100 + 123
    x = tone_noise(n, rate=44100)
    write_audio(tmp_path / name, x, 44100, codec=codec)
    y, sr = read_audio(tmp_path / name)
    assert sr == 44100 and y.dtype == np.float32 and y.shape == (2, n)
    assert np.max(np.abs(y - x)) <= tol
    if codec is None:  # int16 decode is k/32768 exactly: a second round trip is bit-exact
        write_audio(tmp_path / ("2" + name), y, sr)
        assert np.array_equal(read_audio(tmp_path / ("2" + name))[0], y)
    assert not leftovers(tmp_path)


@pytest.mark.parametrize("ext, frame", [(".opus", 960), (".ogg", 960), (".m4a", 1024), (".mp3", 1152)])
def test_lossy_round_trip_length_and_alignment(tmp_path, ext, frame):
    n = RATE + 321
    x = tone_noise(n, channels=1)
    p = tmp_path / f"a{ext}"
    write_audio(p, x, RATE, bitrate="128k")
    y, sr = read_audio(p)
    assert sr == RATE and y.shape[0] == 1
    assert abs(y.shape[1] - n) <= frame
    assert xcorr_lag(x, y) == 0
    assert snr_db(x, y) > 10


def test_opus_resamples_to_48k(tmp_path):
    n = 22050 + 11
    x = tone_noise(n, rate=22050, channels=1)
    write_audio(tmp_path / "a.opus", x, 22050)
    y, sr = read_audio(tmp_path / "a.opus")
    assert sr == 48000
    assert abs(y.shape[1] - round(n * 48000 / 22050)) <= 960


def test_write_audio_validation(tmp_path):
    x = tone_noise(1000, channels=1)
    with pytest.raises(ParameterError, match="extension"):
        write_audio(tmp_path / "a.xyz", x, RATE)
    with pytest.raises(ParameterError, match="PCM"):
        write_audio(tmp_path / "a.wav", x, RATE, codec="aac")
    with pytest.raises(FormatError, match="sample 5"):
        bad = x.copy()
        bad[0, 5] = np.nan
        write_audio(tmp_path / "a.wav", bad, RATE)
    with pytest.raises(FormatError, match="transpose"):
        write_audio(tmp_path / "a.wav", np.zeros((1000, 2), np.float32), RATE)
    with pytest.raises(FormatError, match="empty"):
        write_audio(tmp_path / "a.wav", np.zeros((1, 0), np.float32), RATE)
    with pytest.raises(FormatError, match="sample_rate"):
        write_audio(tmp_path / "a.wav", x, 0)
    assert os.listdir(tmp_path) == []


def test_write_audio_atomic_keeps_old_file(tmp_path, monkeypatch):
    p = tmp_path / "a.wav"
    write_audio(p, tone_noise(1000, channels=1), RATE)
    before = p.read_bytes()
    from mediacore.io import write as write_mod

    def boom(self, total=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(write_mod.AudioStreamEncoder, "finish", boom)
    with pytest.raises(KeyboardInterrupt):
        write_audio(p, tone_noise(5000, channels=1), RATE)
    assert p.read_bytes() == before
    assert not leftovers(tmp_path)


def test_probe(media):
    info = probe(media["mp4"])
    assert "mp4" in info.container and info.has_video and info.video_codecs == ("h264",)
    assert abs(info.duration_s - 2.0) < 0.05
    (a,) = info.audio_streams
    assert (a.codec, a.sample_rate, a.channels, a.layout) == ("aac", RATE, 2, "stereo")
    assert a.bitrate and a.bitrate > 10_000
    w = probe(media["wav"])
    assert w.container == "wav" and not w.has_video and w.audio_streams[0].codec == "pcm_s16le"
    assert abs(w.duration_s - media["n"] / RATE) < 1e-3
    assert probe(media["noaudio"]).audio_streams == ()


# ---------------------------------------------------------------------------
# clean_media: audio files
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("make", [identity, delay480])
@pytest.mark.parametrize("ext", [".wav", ".flac"])
def test_clean_audio_exact(media, tmp_path, make, ext):
    out = tmp_path / f"out{ext}"
    rep = clean_media(media["wav"], out, make)
    x, _ = read_audio(media["wav"])
    y, sr = read_audio(out)
    assert sr == RATE and y.shape == x.shape
    assert np.array_equal(x, y)  # 16-bit in, 16-bit out, identity processing: bit exact
    assert rep.sample_rate == RATE and rep.channels == 2 and rep.video_streams_copied == 0
    assert rep.audio_codec == ("pcm_s16le" if ext == ".wav" else "flac")
    assert rep.duration_s == pytest.approx(media["n"] / RATE)
    assert rep.realtime_factor > 1
    assert not leftovers(tmp_path)


@pytest.mark.parametrize("ext, frame", [(".opus", 960), (".m4a", 1024)])
def test_clean_audio_lossy_aligned(media, tmp_path, ext, frame):
    out = tmp_path / f"out{ext}"
    clean_media(media["wav"], out, delay480)
    x, _ = read_audio(media["wav"])
    y, sr = read_audio(out)
    assert sr == RATE and abs(y.shape[1] - x.shape[1]) <= frame
    assert xcorr_lag(x, y) == 0
    assert snr_db(x, y) > 10


def test_clean_out_sample_rate(media, tmp_path):
    out = tmp_path / "out.wav"
    rep = clean_media(media["wav"], out, delay480, out_sample_rate=16000)
    y, sr = read_audio(out)
    assert sr == 16000 == rep.sample_rate and rep.input_sample_rate == RATE
    assert y.shape[1] == round(media["n"] * 16000 / RATE)
    x16, _ = read_audio(media["wav"])
    from scipy.signal import resample_poly

    ref = resample_poly(x16, 1, 3, axis=1)
    assert xcorr_lag(ref, y) == 0


def test_clean_pipeline_with_other_output_rate(media, tmp_path):
    """A pipeline that runs at 16 kHz internally and outputs 16 kHz: resampled back to the file rate."""
    from scipy.signal import resample_poly

    class Down:
        def __init__(self, sr, ch):
            self.output_sample_rate, self.latency, self.ch = 16000, 160, ch
            self.buf = [np.zeros((ch, 480), np.float32)]

        def process(self, x):  # 48k -> 16k, 160 samples (at 16k) of delay
            self.buf.append(x)
            z = np.concatenate(self.buf, axis=1)
            k = (z.shape[1] // 3) * 3
            self.buf = [z[:, k:]]
            return z[:, :k:3].copy()

        def flush(self):
            z = np.concatenate(self.buf, axis=1)
            return z[:, ::3].copy()

    out = tmp_path / "out.wav"
    clean_media(media["wav"], out, Down)
    x, _ = read_audio(media["wav"])
    y, sr = read_audio(out)
    assert sr == RATE and y.shape == x.shape
    assert xcorr_lag(resample_poly(x, 1, 3, axis=1), resample_poly(y, 1, 3, axis=1)) == 0


# ---------------------------------------------------------------------------
# clean_media: video containers
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("make", [identity, delay480])
@pytest.mark.parametrize("kind, frame, codec", [("mp4", 1024, "aac"), ("webm", 960, "libopus")])
def test_clean_video_remux(media, tmp_path, make, kind, frame, codec):
    src = media[kind]
    out = tmp_path / f"out.{kind}"
    rep = clean_media(src, out, make)
    assert rep.video_streams_copied == 1 and rep.audio_codec == codec
    # every video packet byte-identical, same timestamps
    vin, vout = video_packets(src), video_packets(out)
    assert len(vin) == len(vout) == 50
    assert vin == vout
    # audio: same length (within one codec frame), aligned, same start
    x, _ = read_audio(src)
    y, sr = read_audio(out)
    assert sr == RATE and abs(y.shape[1] - x.shape[1]) <= frame
    assert xcorr_lag(x, y) == 0
    assert snr_db(x, y) > 8
    assert abs(first_audio_time(out) - first_audio_time(src)) <= frame / RATE
    # container / stream metadata kept
    with av.open(str(src)) as a, av.open(str(out)) as b:
        assert b.metadata.get("title") == a.metadata.get("title") is not None
        assert b.streams.audio[0].metadata.get("language") == "eng"
        assert abs(b.duration - a.duration) <= frame / RATE * 1e6 + 2000
    assert not leftovers(tmp_path)


def test_clean_multiple_audio_streams(media, tmp_path):
    calls = []

    def make(sr, ch):
        calls.append((sr, ch))
        return DelayPipeline(sr, ch, 256)

    out = tmp_path / "out.mp4"
    rep = clean_media(media["mp4_2a"], out, make)
    assert calls == [(RATE, 1), (RATE, 1)]
    assert len(rep.audio_streams) == 2
    with av.open(str(out)) as c:
        assert [s.metadata.get("language") for s in c.streams.audio] == ["eng", "fra"]
    for k in (0, 1):
        x, _ = read_audio(media["mp4_2a"], stream=k)
        y, _ = read_audio(out, stream=k)
        assert abs(y.shape[1] - x.shape[1]) <= 1024 and xcorr_lag(x, y) == 0
    # the second stream is the quieter one (scaled by 1/2 at creation)
    assert np.std(read_audio(out, stream=1)[0]) < 0.7 * np.std(read_audio(out, stream=0)[0])
    assert video_packets(out) == video_packets(media["mp4_2a"])


def test_clean_video_to_audio_only_and_other_container(media, tmp_path):
    rep = clean_media(media["mp4"], tmp_path / "out.wav", identity)
    assert rep.video_streams_copied == 0
    assert not probe(tmp_path / "out.wav").has_video
    rep = clean_media(media["mp4"], tmp_path / "out.mkv", identity)  # h264 + aac fit in matroska
    assert rep.video_streams_copied == 1 and rep.audio_codec == "aac"
    assert [p[0] for p in video_packets(tmp_path / "out.mkv")] == [p[0] for p in video_packets(media["mp4"])]
    with pytest.raises(ParameterError, match="video"):  # webm cannot hold h264; never re-encoded
        clean_media(media["mp4"], tmp_path / "out.webm", identity)
    assert not (tmp_path / "out.webm").exists() and not leftovers(tmp_path)


def test_progress(media, tmp_path, capsys):
    seen = []
    clean_media(media["mp4"], tmp_path / "o.mp4", identity, progress=lambda s, t: seen.append((s, t)))
    assert seen and seen[-1][0] == pytest.approx(seen[-1][1]) and seen[-1][1] == pytest.approx(2.0, abs=0.05)
    assert all(b[0] >= a[0] for a, b in zip(seen, seen[1:]))
    clean_media(media["wav"], tmp_path / "o.wav", identity, progress=True)
    assert "s/s" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# atomicity and errors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt()])
@pytest.mark.parametrize("src_key, ext", [("wav", ".wav"), ("mp4", ".mp4")])
def test_clean_failure_leaves_nothing(media, tmp_path, exc, src_key, ext):
    out = tmp_path / f"out{ext}"
    with pytest.raises(type(exc)):
        clean_media(media[src_key], out, lambda sr, ch: FailingPipeline(sr, ch, exc))
    assert os.listdir(tmp_path) == []


def test_clean_failure_keeps_existing_output(media, tmp_path):
    out = tmp_path / "out.wav"
    out.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        clean_media(media["wav"], out, lambda sr, ch: FailingPipeline(sr, ch, RuntimeError("x")))
    assert out.read_bytes() == b"old" and os.listdir(tmp_path) == ["out.wav"]


def test_bad_pipeline_output(media, tmp_path):
    class Mono(DelayPipeline):
        def process(self, x):
            return x[:1]

    with pytest.raises(FormatError, match=r"expected \(2, m\)"):
        clean_media(media["wav"], tmp_path / "o.wav", Mono)

    class Nan(DelayPipeline):
        def process(self, x):
            y = x.copy()
            y[1, 7] = np.inf
            return y

    with pytest.raises(FormatError, match="sample 7 .channel 1. is \\+Inf"):
        clean_media(media["wav"], tmp_path / "o.wav", Nan)
    assert os.listdir(tmp_path) == []


def _corrupt_inputs(media, d):
    wav = media["wav"].read_bytes()
    (d / "header_cut.wav").write_bytes(wav[:22])
    (d / "data_cut.wav").write_bytes(wav[: 44 + 4 * 1000])  # header promises 2 s, holds 1000 samples
    (d / "random.mp4").write_bytes(np.random.default_rng(0).bytes(10000))
    mp4 = media["mp4"].read_bytes()
    (d / "half.mp4").write_bytes(mp4[: len(mp4) // 2])
    webm = media["webm"].read_bytes()
    (d / "half.webm").write_bytes(webm[: len(webm) // 2])
    (d / "text.flac").write_text("not audio\n" * 50)
    return ["header_cut.wav", "data_cut.wav", "random.mp4", "half.mp4", "half.webm", "text.flac"]


def test_errors_media(media, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    names = _corrupt_inputs(media, src)
    names += ["missing.wav"]
    out = tmp_path / "out"
    out.mkdir()
    for name in names:
        with pytest.raises(MediaError, match=name.replace(".", r"\.")):
            read_audio(src / name)
        with pytest.raises(MediaError, match=name.replace(".", r"\.")):
            clean_media(src / name, out / "o.wav", identity)
        with pytest.raises(OSError):  # MediaError is an OSError
            read_audio(src / name)
    with pytest.raises(MediaError, match=r"noaudio\.mp4.*no audio stream"):
        read_audio(media["noaudio"])
    with pytest.raises(MediaError, match=r"noaudio\.mp4.*no audio stream"):
        clean_media(media["noaudio"], out / "o.mp4", identity)
    assert os.listdir(out) == []


def test_errors_format(tmp_path):
    sf.write(tmp_path / "empty.wav", np.zeros((0, 1), np.float32), 16000)
    x = np.zeros(3000, np.float32)
    x[2345] = np.nan
    sf.write(tmp_path / "nan.wav", x, 16000, subtype="FLOAT")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(FormatError, match=r"empty\.wav.*empty"):
        read_audio(tmp_path / "empty.wav")
    with pytest.raises(FormatError, match=r"empty\.wav.*empty"):
        clean_media(tmp_path / "empty.wav", out / "o.wav", identity)
    with pytest.raises(FormatError, match=r"nan\.wav.*sample 2345 .* NaN"):
        read_audio(tmp_path / "nan.wav")
    with pytest.raises(FormatError, match=r"nan\.wav.*sample 2345 .* NaN"):
        clean_media(tmp_path / "nan.wav", out / "o.flac", identity)
    assert os.listdir(out) == []


def test_errors_parameters(media, tmp_path):
    with pytest.raises(ParameterError, match="extension"):
        clean_media(media["wav"], tmp_path / "o.xyz", identity)
    with pytest.raises(ParameterError, match="out_sample_rate"):
        clean_media(media["wav"], tmp_path / "o.wav", identity, out_sample_rate=-5)
    with pytest.raises(ParameterError, match="codec"):
        clean_media(media["wav"], tmp_path / "o.m4a", identity, audio_codec="nosuchcodec")
    with pytest.raises(ParameterError, match="bitrate"):
        clean_media(media["wav"], tmp_path / "o.m4a", identity, bitrate="lots")
    with pytest.raises(ParameterError, match="stream 3"):
        read_audio(media["wav"], stream=3)
    assert os.listdir(tmp_path) == []


def test_clean_in_place(media, tmp_path):
    p = tmp_path / "clip.mp4"
    p.write_bytes(media["mp4"].read_bytes())
    x, _ = read_audio(p)

    class Half(DelayPipeline):
        def process(self, x):
            return super().process(x) * 0.5

    clean_media(p, p, Half)
    y, _ = read_audio(p)
    assert abs(y.shape[1] - x.shape[1]) <= 1024
    assert np.std(y) == pytest.approx(0.5 * np.std(x), rel=0.05)
    assert video_packets(p) == video_packets(media["mp4"])
    assert os.listdir(tmp_path) == ["clip.mp4"]


# ---------------------------------------------------------------------------
# every container: complete or refused (truncation), formats kept, chapters
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def every_format(tmp_path_factory):
    """One complete 1 s file per format mediacore writes back: {ext: path}."""
    return make_every_format(tmp_path_factory.mktemp("formats"))


def cut(src, dst, fraction):
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


FOUND_RE = r"found (\d+\.\d{3}) s in (\d+) packet\(s\) of (audio|video) stream #(\d+)"


@pytest.mark.parametrize("ext", list(GENERATED))
def test_every_format_complete_round_trip(every_format, tmp_path, ext):
    """A complete file of each format is cleaned into its own format: codec, rate,
    channels and sample count kept, video packets identical."""
    src = every_format[ext]
    out = tmp_path / f"out{ext}"
    rep = clean_media(src, out, identity)
    x, sr = read_audio(src)
    y, sr2 = read_audio(out)
    a, b = probe(src).audio_streams[0], probe(out).audio_streams[0]
    assert (b.codec, b.sample_rate, b.channels, b.sample_format) == (a.codec, a.sample_rate, a.channels,
                                                                     a.sample_format)
    assert (sr2, y.shape[0]) == (sr, x.shape[0])
    frame = 1152 if ext == ".avi" else 0  # AVI cannot mark LAME's end padding: up to one frame longer
    assert x.shape[1] <= y.shape[1] <= x.shape[1] + frame, (x.shape, y.shape)
    assert rep.audio_streams[0].input_samples == x.shape[1]
    if GENERATED[ext][1]:
        assert video_packets(out) == video_packets(src)
    assert sorted(os.listdir(tmp_path)) == [f"out{ext}"]


@pytest.mark.parametrize("fraction", [0.5, 0.9])
@pytest.mark.parametrize("ext", list(GENERATED))
def test_truncated_file_of_every_format_refused(every_format, tmp_path, ext, fraction):
    """Cut at 50 % / 90 % of its bytes: MediaError naming the file, what was expected
    and what was found; no output, no temporary file."""
    src = cut(every_format[ext], tmp_path / f"cut{ext}", fraction)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(MediaError) as err:
        clean_media(src, out_dir / f"o{ext}", identity)
    msg = str(err.value)
    assert msg.startswith(f"{src}: truncated or damaged: expected "), msg
    assert ", found " in msg
    with pytest.raises(MediaError) as err2:
        read_audio(src)
    assert str(err2.value) == msg
    assert os.listdir(out_dir) == []


def test_truncated_mp4_message_exact(every_format, tmp_path):
    """The H.264 + AAC MP4 that used to give exit 0 at 50 %: the sample table's duration
    and packet count against the packets the cut file holds, and the box that is cut."""
    full = every_format[".mp4"]
    with av.open(str(full)) as c:
        s = c.streams.audio[0]
        declared, frames, index = float(s.duration * s.time_base), s.frames, s.index
    src = cut(full, tmp_path / "half.mp4", 0.5)
    with av.open(str(src)) as c:
        pk = [p for p in c.demux(c.streams.audio[0]) if p.size]
    found = float((pk[-1].pts + pk[-1].duration - pk[0].pts) * pk[0].time_base)
    with pytest.raises(MediaError) as err:
        clean_media(src, tmp_path / "o.mp4", identity)
    msg = str(err.value)
    assert msg.startswith(
        f"{src}: truncated or damaged: expected {declared:.3f} s of audio stream #{index} (the MP4 sample table), "
        f"found {found:.3f} s in {len(pk)} packet(s) of audio stream #{index}; the 'mdat' box at byte ")
    assert declared == pytest.approx(1.0, abs=0.03) and found < 0.6 and len(pk) < frames
    size = src.stat().st_size
    pos, need, into = map(int, __import__("re").search(r"byte (\d+) needs (\d+) bytes, the file ends (\d+) bytes",
                                                        msg).groups())
    assert pos + into == size and pos + need > size
    assert os.listdir(tmp_path) == ["half.mp4"]


@pytest.mark.parametrize("ext, expected", [
    (".wav", r"expected 1\.000 s of audio stream #0 \(the WAV data chunk size\)"),
    (".aiff", r"expected 1\.000 s of audio stream #0 \(the AIFF COMM chunk\)"),
    (".mkv", r"expected 1\.0\d\d s of audio stream #1 \(the Matroska DURATION tag\)"),
    (".mp3", r"expected a complete MP3 file"),
    (".aac", r"expected a complete ADTS AAC file"),
    (".ts", r"expected a complete MPEG-TS file"),
    (".avi", r"expected a complete AVI file"),
])
def test_truncated_message_expected_and_found(every_format, tmp_path, ext, expected):
    """What the headers declare (or, without a declared length, a complete file) against the
    duration of the packets before the cut: 90 % of the bytes hold 0.5-0.97 s of 1 s."""
    src = cut(every_format[ext], tmp_path / f"cut{ext}", 0.9)
    with pytest.raises(MediaError) as err:
        read_audio(src)
    msg = str(err.value)
    import re

    assert re.search(f"^{re.escape(str(src))}: truncated or damaged: {expected}, {FOUND_RE}; ", msg), msg
    found = float(re.search(FOUND_RE, msg).group(1))
    assert 0.5 < found < 0.97, msg


def test_truncated_file_ffmpeg_cannot_open(every_format, tmp_path):
    """A 1 s Opus file is one Ogg page of audio: 90 % of it does not open at all; the page
    walk says where it is cut."""
    src = cut(every_format[".opus"], tmp_path / "cut.opus", 0.9)
    size = src.stat().st_size
    with pytest.raises(MediaError) as err:
        clean_media(src, tmp_path / "o.opus", identity)
    import re

    m = re.fullmatch(f"{re.escape(str(src))}: truncated or damaged: expected a complete Ogg file, found one FFmpeg "
                     r"cannot open \(End of file\); the Ogg page at byte (\d+) needs (\d+) bytes, the file ends "
                     r"(\d+) bytes into it", str(err.value))
    assert m, str(err.value)
    pos, need, into = map(int, m.groups())
    assert pos + into == size and pos + need > size
    assert os.listdir(tmp_path) == ["cut.opus"]


def test_cut_at_a_frame_or_page_boundary(every_format, tmp_path):
    """Cuts that leave whole frames / pages: the Ogg stream lacks its end-of-stream page,
    the MP3 holds fewer frames than its Xing/Info header counts."""
    data = every_format[".opus"].read_bytes()
    src = tmp_path / "pages.opus"
    src.write_bytes(data[: data.rfind(b"OggS")])
    with pytest.raises(MediaError, match=r"pages\.opus: truncated or damaged: expected a complete Ogg file, found "
                                         r"\d\.\d{3} s .*has no end-of-stream page"):
        read_audio(src)
    data = every_format[".mp3"].read_bytes()
    with av.open(str(every_format[".mp3"])) as c:
        last_but_one = [p for p in c.demux(c.streams.audio[0]) if p.size][-2]
    src = tmp_path / "frames.mp3"
    src.write_bytes(data[: last_but_one.pos])  # two whole frames short (one is slack: see integrity)
    with pytest.raises(MediaError, match=r"frames\.mp3: .*the Xing/Info header counts (\d+) MPEG audio frames, "
                                         r"\d\.\d{3} s; the file holds (\d+), "):
        clean_media(src, tmp_path / "o.mp3", identity)
    assert sorted(os.listdir(tmp_path)) == ["frames.mp3", "pages.opus"]


def test_cli_truncated_exit_1(every_format, tmp_path, capsys):
    from mediacore.cli import main

    src = cut(every_format[".m4a"], tmp_path / "talk.m4a", 0.5)
    assert main(["clean", str(src), "-o", str(tmp_path / "talk.clean.m4a"), "-q", "--denoise", "dsp"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"mediacore clean: error: {src}: truncated or damaged: expected 1.0")
    assert "found 0." in err and err.count("\n") == 1
    assert os.listdir(tmp_path) == ["talk.m4a"]


def test_mp4_chapters_copied(tmp_path):
    chapters = [{"id": 1, "start": 0, "end": 500, "time_base": Fraction(1, 1000), "metadata": {"title": "Intro"}},
                {"id": 2, "start": 500, "end": 1000, "time_base": Fraction(1, 1000), "metadata": {"title": "Talk"}}]
    src = tmp_path / "talk.mp4"
    make_file(src, "aac", "libx264", chapters=chapters)

    def titles_and_times(path):
        with av.open(str(path)) as c:
            return [(ch["metadata"]["title"], float(ch["start"] * ch["time_base"]), float(ch["end"] * ch["time_base"]))
                    for ch in c.chapters()]

    assert titles_and_times(src) == [("Intro", 0.0, 0.5), ("Talk", 0.5, 1.0)]
    for ext in (".mp4", ".mkv", ".mov"):
        rep = clean_media(src, tmp_path / f"out{ext}", delay480)
        assert (rep.chapters_copied, rep.chapters_dropped) == (2, 0)
        assert titles_and_times(tmp_path / f"out{ext}") == titles_and_times(src)
        # bytes, pts and key flags identical (Matroska stores no dts: FFmpeg rebuilds it)
        assert [(b, pts, k) for b, pts, _dts, k in video_packets(tmp_path / f"out{ext}")] == \
            [(b, pts, k) for b, pts, _dts, k in video_packets(src)]
    with pytest.warns(RuntimeWarning, match=r"out\.wav: 2 chapter\(s\) of .*talk\.mp4 dropped: a wav file cannot "
                                            r"hold chapters"):
        rep = clean_media(src, tmp_path / "out.wav", identity)
    assert (rep.chapters_copied, rep.chapters_dropped) == (0, 2)
    assert not leftovers(tmp_path)


def test_24_bit_flac_stays_24_bit(tmp_path):
    x = tone_noise(RATE // 2 + 17, channels=2)
    sf.write(tmp_path / "in.flac", x.T, RATE, subtype="PCM_24")
    clean_media(tmp_path / "in.flac", tmp_path / "out.flac", identity)
    clean_media(tmp_path / "in.flac", tmp_path / "out.wav", identity)
    clean_media(tmp_path / "in.flac", tmp_path / "out.aiff", identity)
    for name in ("out.flac", "out.wav", "out.aiff"):
        assert sf.info(tmp_path / name).subtype == "PCM_24", name
        y, sr = read_audio(tmp_path / name)
        assert sr == RATE and np.array_equal(y, read_audio(tmp_path / "in.flac")[0])  # bit exact


@pytest.mark.parametrize("subtype, codec", [("PCM_U8", "pcm_u8"), ("PCM_32", "pcm_s32le"), ("DOUBLE", "pcm_f64le")])
def test_wav_sample_format_kept(tmp_path, subtype, codec):
    sf.write(tmp_path / "in.wav", tone_noise(4000, channels=1).T, 16000, subtype=subtype)
    rep = clean_media(tmp_path / "in.wav", tmp_path / "out.wav", identity)
    assert rep.audio_codec == codec and sf.info(tmp_path / "out.wav").subtype == subtype
    assert np.array_equal(read_audio(tmp_path / "out.wav")[0], read_audio(tmp_path / "in.wav")[0])


_VORBIS_SCRIPT = """
import sys
from fractions import Fraction
import av, numpy as np
x = (0.3 * np.sin(2 * np.pi * 440 * np.arange(44100) / 44100)).astype(np.float32)
with av.open(sys.argv[1], "w") as oc:
    s = oc.add_stream("vorbis", rate=44100)
    s.layout = "stereo"
    s.codec_context.options = {"strict": "experimental"}
    s.codec_context.open()
    for i in range(0, 44100, 1024):
        f = av.AudioFrame.from_ndarray(np.ascontiguousarray(np.stack([x[i:i + 1024]] * 2)), format="fltp",
                                       layout="stereo")
        f.sample_rate, f.pts, f.time_base = 44100, i, Fraction(1, 44100)
        oc.mux(s.encode(f))
    oc.mux(s.encode(None))
"""


def test_vorbis_ogg_keeps_vorbis_or_says_why(tmp_path):
    """44.1 kHz Vorbis .ogg -> .ogg: Vorbis at 44.1 kHz where libvorbis is built in; else a
    ParameterError that names the codec, the rate and the way out -- never 48 kHz Opus."""
    import subprocess
    import sys

    from mediacore.io._av import encoder_available

    src = tmp_path / "in.ogg"
    # FFmpeg's own (experimental) Vorbis encoder makes the input; in a child, as it can abort
    done = subprocess.run([sys.executable, "-c", _VORBIS_SCRIPT, str(src)], capture_output=True, timeout=120)
    if done.returncode or not src.exists():
        pytest.skip(f"no Vorbis encoder to make the input: {done.stderr[-200:]!r}")
    assert probe(src).audio_streams[0].codec == "vorbis"
    out = tmp_path / "out.ogg"
    if encoder_available("libvorbis"):
        clean_media(src, out, identity)
        b = probe(out).audio_streams[0]
        assert (b.codec, b.sample_rate) == ("vorbis", 44100)
    else:
        with pytest.raises(ParameterError) as err:
            clean_media(src, out, identity)
        assert str(err.value) == (
            f"{out}: cannot keep the input's vorbis audio (2 ch, 44100 Hz) in .ogg: this FFmpeg build has no "
            f"encoder for it that .ogg holds; choose the output codec (--codec / audio_codec, e.g. libopus) to "
            f"convert it")
        assert sorted(os.listdir(tmp_path)) == ["in.ogg"]
        rep = clean_media(src, tmp_path / "opus.ogg", identity, audio_codec="opus")  # asked for: converted
        assert (rep.audio_codec, rep.sample_rate) == ("libopus", 48000)


def test_copied_streams_the_container_refuses(every_format, tmp_path):
    """H.264 + AAC from MP4 into AVI: either a complete output or a MediaError naming the
    output, the muxer and the way out (this FFmpeg's AVI muxer refuses those packets);
    never an unwrapped FFmpeg error or a partial file."""
    out = tmp_path / "out.avi"
    try:
        clean_media(every_format[".mp4"], out, identity)
    except MediaError as exc:
        assert str(exc).startswith(f"{out}: writing the avi output failed: ")
        assert str(exc).endswith("(the streams copied from clip.mp4 may not fit the avi container; choose another one)")
        assert os.listdir(tmp_path) == []
    else:
        assert read_audio(out)[0].shape[1] >= read_audio(every_format[".mp4"])[0].shape[1]
        assert [p[0] for p in video_packets(out)] == [p[0] for p in video_packets(every_format[".mp4"])]
