"""BS.1770 loudness: K-weighting, gating (EBU Tech 3341 cases), true peak,
the true-peak limiter, LoudnessNormalize and clean_media(loudness_lufs=...)."""

from __future__ import annotations

import math
from fractions import Fraction

import av
import numpy as np
import pytest
import soundfile as sf

from mediacore import AudioFrame
from mediacore.dsp.loudness import k_weighting_sos
from mediacore.errors import FormatError, ParameterError
from mediacore.io import clean_media, read_audio
from mediacore.stages.loudness import LoudnessMeter, LoudnessNormalize, TruePeakLimiter, measure_loudness

RATE = 48000


def sine(freq: float, dbfs: float, seconds: float, rate: int = RATE, phase: float = 0.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (10 ** (dbfs / 20) * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)


def test_k_weighting_matches_the_recommendation_at_48k():
    sos = k_weighting_sos(48000)
    np.testing.assert_allclose(sos[0], [1.53512485958697, -2.69169618940638, 1.19839281085285,
                                        1.0, -1.69065929318241, 0.73248077421585], atol=1e-8)
    np.testing.assert_allclose(sos[1], [1.0, -2.0, 1.0, 1.0, -1.99004745483398, 0.99007225036621], atol=1e-8)


@pytest.mark.parametrize("rate", [48000, 44100, 16000])
def test_997hz_sine_reads_minus_23_lufs(rate):
    # BS.1770 / Tech 3341: a 997 Hz sine at -20 dBFS peak in one channel reads -23.0 LUFS; both channels -20.0
    x = sine(997, -20.0, 5.0, rate)
    assert measure_loudness(x, rate).integrated_lufs == pytest.approx(-23.0, abs=0.1)
    assert measure_loudness(np.stack([x, x]), rate).integrated_lufs == pytest.approx(-20.0, abs=0.1)


def test_tech3341_gating_cases():
    # case 3: -36 / -23 / -36 dBFS stereo, 10 / 60 / 10 s -> -23.0 (relative gate drops the quiet parts)
    x = np.concatenate([sine(1000, -36, 10), sine(1000, -23, 60), sine(1000, -36, 10)])
    assert measure_loudness(np.stack([x, x]), RATE).integrated_lufs == pytest.approx(-23.0, abs=0.1)
    # case 5: -26 / -20 / -26 dBFS, 20 / 20.1 / 20 s -> -23.0
    x = np.concatenate([sine(1000, -26, 20), sine(1000, -20, 20.1), sine(1000, -26, 20)])
    assert measure_loudness(np.stack([x, x]), RATE).integrated_lufs == pytest.approx(-23.0, abs=0.1)
    # -72 / -36 / -23 / -36 / -72 dBFS, 10 s each: -72 falls under the absolute gate, -36 passes the
    # relative gate (10 LU under the mean of the rest): -23 + 10 log10((1 + 2 * 10^-1.3) / 3) = -27.36
    x = np.concatenate([sine(1000, d, 10) for d in (-72, -36, -23, -36, -72)])
    assert measure_loudness(np.stack([x, x]), RATE).integrated_lufs == pytest.approx(-27.36, abs=0.1)
    # the absolute gate alone: -75 / -68 dBFS, 10 s each -> -68.0 (both halves would pass the relative gate)
    x = np.concatenate([sine(1000, -75, 10), sine(1000, -68, 10)])
    assert measure_loudness(np.stack([x, x]), RATE).integrated_lufs == pytest.approx(-68.0, abs=0.1)


def test_silence_and_short_signals_are_minus_inf():
    assert measure_loudness(np.zeros(RATE, np.float32), RATE).integrated_lufs == -math.inf
    assert measure_loudness(sine(1000, -20, 0.3), RATE).integrated_lufs == -math.inf  # < one 400 ms block


def test_true_peak_sees_inter_sample_peaks():
    # fs/4 at 45 degrees: every sample sits at 0.707 of the crest (sample peak 3.01 dB below the true peak)
    x = sine(12000, -6.0206, 2.0, phase=np.pi / 4)
    x[:480] *= np.linspace(0, 1, 480, dtype=np.float32)  # no onset transient
    m = measure_loudness(x, RATE)
    assert m.sample_peak_dbfs == pytest.approx(-9.03, abs=0.01)
    assert m.true_peak_dbtp == pytest.approx(-6.02, abs=0.1)
    # a 1 kHz tone: true peak == sample peak within 0.01 dB
    m = measure_loudness(sine(1000, -10.0, 1.0), RATE)
    assert m.true_peak_dbtp == pytest.approx(-10.0, abs=0.01) and m.sample_peak_dbfs == pytest.approx(-10.0, abs=0.01)


def test_meter_is_chunk_invariant_and_passes_audio_through():
    rng = np.random.default_rng(1)
    x = (0.1 * rng.standard_normal((2, 3 * RATE))).astype(np.float32)
    one = measure_loudness(x, RATE)
    meter = LoudnessMeter(sample_rate=RATE)
    parts = [meter.process(x[:, i: i + 509]) for i in range(0, x.shape[1], 509)]
    np.testing.assert_array_equal(np.concatenate(parts, axis=1), x)
    meter.flush()
    assert meter.last == one
    assert meter.measurement() == one  # the ended stream's reading stays until new samples arrive
    meter.process(x[:, :RATE])
    assert meter.measurement().duration_s == 1.0 and meter.last == one  # a new stream; the last one kept
    meter.reset()
    assert meter.last is None and meter.measurement().duration_s == 0.0  # reset forgets


def test_meter_keeps_its_reading_after_run():
    x = sine(997, -20.0, 3.0)
    meter = LoudnessMeter(sample_rate=RATE)
    np.testing.assert_array_equal(meter.run(x), x)
    m = meter.measurement()
    assert m.integrated_lufs == pytest.approx(-23.0, abs=0.05) and meter.integrated_lufs == m.integrated_lufs
    assert m.true_peak_dbtp == pytest.approx(-20.0, abs=0.01) and m.duration_s == 3.0
    assert meter.last == m == measure_loudness(x, RATE)
    # a second run measures the second signal only
    meter.run(sine(997, -30.0, 1.0))
    assert meter.integrated_lufs == pytest.approx(-33.0, abs=0.05) and meter.measurement().duration_s == 1.0
    # an empty stream reads -inf, not None and not the previous stream
    empty = measure_loudness(np.zeros(0, np.float32), RATE)
    assert empty.integrated_lufs == -math.inf and empty.duration_s == 0.0


def test_true_peak_limiter_ceiling_latency_and_transparency():
    rng = np.random.default_rng(2)
    x = (0.5 * rng.standard_normal(2 * RATE)).astype(np.float32)  # peaks near +6 dBFS
    lim = TruePeakLimiter(sample_rate=RATE, ceiling_dbtp=-1.0)
    assert lim.latency == 6 + 72
    y = lim.run(x)
    assert y.shape == x.shape
    assert measure_loudness(x, RATE).true_peak_dbtp > 5.0
    assert measure_loudness(y, RATE).true_peak_dbtp <= -1.0 + 0.02
    # quiet audio comes out unchanged, delayed by exactly the declared latency
    q = (0.05 * rng.standard_normal(RATE)).astype(np.float32)
    np.testing.assert_array_equal(lim.run(q), q)
    imp = np.zeros(1000, np.float32)
    imp[100] = 0.5
    out = np.concatenate([lim.process(imp), lim.flush()])
    assert int(np.argmax(np.abs(out))) == 100 + lim.latency


def test_loudness_normalize():
    rng = np.random.default_rng(3)
    x = (0.01 * rng.standard_normal((1, 4 * RATE))).astype(np.float32)
    before = measure_loudness(x, RATE).integrated_lufs
    norm = LoudnessNormalize(sample_rate=RATE, target_lufs=-23.0)
    y = norm.run(x)
    assert measure_loudness(y, RATE).integrated_lufs == pytest.approx(-23.0, abs=0.05)
    assert "target_lufs=-23.0" in repr(norm) and "true_peak_dbtp=-1.0" in repr(norm)
    # streaming with the measured value: same result
    s = LoudnessNormalize(sample_rate=RATE, target_lufs=-23.0, measured_lufs=before)
    assert s.gain_db == pytest.approx(-23.0 - before)
    np.testing.assert_allclose(s.run(x), y, atol=1e-7)
    # to -16 the peaks of noise reach the ceiling: limited to -1 dBTP, loudness just under the target
    y16 = LoudnessNormalize(sample_rate=RATE, target_lufs=-10.0, true_peak_dbtp=-1.0).run(x)
    m = measure_loudness(y16, RATE)
    assert m.true_peak_dbtp <= -0.98 and -10.6 < m.integrated_lufs < -10.0
    with pytest.raises(FormatError, match="LoudnessNormalize: expected measured_lufs"):
        LoudnessNormalize(sample_rate=RATE).process(x)
    # silence is not amplified
    z = np.zeros(RATE, np.float32)
    np.testing.assert_array_equal(LoudnessNormalize(sample_rate=RATE).run(z), z)


def test_parameter_errors_name_the_stage():
    with pytest.raises(ParameterError, match=r"LoudnessNormalize: expected target_lufs in \[-70.0, 0.0\], got 5"):
        LoudnessNormalize(sample_rate=RATE, target_lufs=5)
    with pytest.raises(ParameterError, match=r"TruePeakLimiter: expected ceiling_dbtp in \[-60.0, 0.0\], got 3"):
        TruePeakLimiter(sample_rate=RATE, ceiling_dbtp=3)
    with pytest.raises(ParameterError, match="LoudnessMeter: expected sample_rate as a positive integer"):
        LoudnessMeter(sample_rate=0)


def identity(sr, ch):
    from mediacore import default_chain

    return default_chain(sample_rate=sr, num_channels=ch, denoise="none", agc=False)


def test_clean_media_loudness_option(tmp_path):
    rng = np.random.default_rng(4)
    x = (0.02 * rng.standard_normal((2, 3 * RATE)) + sine(300, -30, 3.0)).astype(np.float32)
    sf.write(tmp_path / "in.wav", x.T, RATE, subtype="FLOAT")
    for target in (-16.0, -23.0):
        rep = clean_media(tmp_path / "in.wav", tmp_path / f"out{target}.wav", identity, loudness_lufs=target,
                          audio_codec="float")
        assert rep.loudness_lufs[0] == pytest.approx(measure_loudness(x, RATE).integrated_lufs, abs=0.05)
        y, _ = read_audio(tmp_path / f"out{target}.wav")
        assert y.shape == x.shape
        m = measure_loudness(y, RATE)
        assert m.integrated_lufs == pytest.approx(target, abs=0.1) and m.true_peak_dbtp <= -0.98
        # aligned with the input: the limiter's latency is compensated
        g = 10 ** ((target - rep.loudness_lufs[0]) / 20)
        k = int(np.argmax(np.correlate(y[0, :4800], x[0, :4800] * g, "full"))) - 4799
        assert k == 0
    with pytest.raises(ParameterError, match="loudness_lufs"):
        clean_media(tmp_path / "in.wav", tmp_path / "o.wav", identity, loudness_lufs=3)


def test_clean_media_keeps_chapters(tmp_path):
    src = tmp_path / "in.mkv"
    chapters = [{"id": 1, "start": 0, "end": 1000, "time_base": Fraction(1, 1000), "metadata": {"title": "Intro"}},
                {"id": 2, "start": 1000, "end": 2000, "time_base": Fraction(1, 1000), "metadata": {"title": "Talk"}}]
    with av.open(str(src), "w") as oc:
        oc.set_chapters(chapters)
        vs = oc.add_stream("libvpx", rate=10)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        a = oc.add_stream("libopus", rate=RATE)
        a.layout = "mono"
        for i in range(20):
            vf = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 10, np.uint8), format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, 10)
            oc.mux(vs.encode(vf))
        oc.mux(vs.encode(None))
        x = sine(440, -20, 2.0)
        for i in range(0, len(x), 960):
            f = av.AudioFrame.from_ndarray(x[None, i: i + 960], format="flt", layout="mono")
            f.sample_rate, f.pts = RATE, i
            oc.mux(a.encode(f))
        oc.mux(a.encode(None))
    rep = clean_media(src, tmp_path / "out.mkv", identity)
    assert rep.chapters_copied == 2
    with av.open(str(tmp_path / "out.mkv")) as c:
        got = c.chapters()
    assert [(ch["start"] * ch["time_base"], ch["end"] * ch["time_base"], ch["metadata"]["title"]) for ch in got] == \
        [(0, 1, "Intro"), (1, 2, "Talk")]


@pytest.mark.parametrize("chunk", [1, 17, 480, 509])
def test_limiter_and_normalizer_chunk_invariance(chunk):
    rng = np.random.default_rng(5)
    x = (0.4 * rng.standard_normal((2, 9000))).astype(np.float32)
    for make in (lambda: TruePeakLimiter(sample_rate=RATE, ceiling_dbtp=-3.0),
                 lambda: LoudnessNormalize(sample_rate=RATE, target_lufs=-14.0, measured_lufs=-20.0)):
        st = make()
        whole = np.concatenate([st.process(x), st.flush()], axis=1)
        st = make()
        parts = [st.process(x[:, i: i + chunk]) for i in range(0, x.shape[1], chunk)] + [st.flush()]
        np.testing.assert_array_equal(np.concatenate(parts, axis=1), whole)


def test_cli_clean_loudness(tmp_path):
    from mediacore.cli import main

    rng = np.random.default_rng(6)
    x = (0.01 * rng.standard_normal((1, 2 * RATE))).astype(np.float32)
    sf.write(tmp_path / "in.flac", x.T, RATE, subtype="PCM_24")
    code = main(["clean", str(tmp_path / "in.flac"), "-o", str(tmp_path / "out.flac"), "--denoise", "none",
                 "--no-agc", "--loudness", "-23", "--true-peak", "-2", "-q"])
    assert code == 0
    y, _ = read_audio(tmp_path / "out.flac")
    m = measure_loudness(y, RATE)
    assert m.integrated_lufs == pytest.approx(-23.0, abs=0.1) and m.true_peak_dbtp <= -1.98


@pytest.mark.parametrize("make", [lambda: LoudnessMeter(sample_rate=RATE),
                                  lambda: TruePeakLimiter(sample_rate=RATE, ceiling_dbtp=-6.0),
                                  lambda: LoudnessNormalize(sample_rate=RATE, target_lufs=-16.0, measured_lufs=-24.0)],
                         ids=["meter", "limiter", "normalize"])
def test_stage_contract(make):
    rng = np.random.default_rng(7)
    x = (0.2 * rng.standard_normal((2, 12345))).astype(np.float32)
    st = make()
    before = repr(st)
    first = st.run(x)
    st.process(x[:, :777])
    st.reset()
    np.testing.assert_array_equal(st.run(x), first)  # reset forgets the stream
    assert repr(st) == before and first.shape == x.shape
    total = np.concatenate([st.process(x), st.flush()], axis=1)
    assert total.shape[1] == x.shape[1] + st.latency  # flush brings out the whole input


def test_meter_momentary_and_cost_is_linear():
    import time

    meter = LoudnessMeter(sample_rate=RATE)
    x = sine(997, -20.0, 1.0)
    out = meter.process_frame(AudioFrame(x, RATE))
    assert out.meta["momentary_lufs"] == pytest.approx(-23.0, abs=0.1)
    # many small chunks: no per-chunk work over the whole history
    long = np.tile(sine(997, -20.0, 1.0), 120)  # 2 minutes
    meter.reset()
    t0 = time.perf_counter()
    for i in range(0, len(long), 1024):
        meter.process(long[i: i + 1024])
    assert time.perf_counter() - t0 < 10.0
    assert meter.integrated_lufs == pytest.approx(-23.0, abs=0.1)


class MonoOneDim:
    """A pipeline that returns 1-D arrays for mono (allowed by clean_media)."""

    latency = 0
    output_sample_rate = RATE

    def process(self, x):
        return x[0] * 0.5

    def flush(self):
        return np.zeros(0, np.float32)


def test_clean_media_loudness_with_a_one_dimensional_pipeline(tmp_path):
    x = (0.05 * np.random.default_rng(8).standard_normal((1, 2 * RATE))).astype(np.float32)
    sf.write(tmp_path / "in.wav", x.T, RATE, subtype="FLOAT")
    rep = clean_media(tmp_path / "in.wav", tmp_path / "out.wav", lambda sr, ch: MonoOneDim(), loudness_lufs=-20,
                      audio_codec="float")
    y, _ = read_audio(tmp_path / "out.wav")
    assert y.shape == x.shape and rep.loudness_lufs[0] == pytest.approx(measure_loudness(x * 0.5, RATE).integrated_lufs)
    assert measure_loudness(y, RATE).integrated_lufs == pytest.approx(-20.0, abs=0.1)
