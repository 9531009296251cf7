"""The stage contract, checked on every stage (and on pipelines, which are stages too)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import resample_poly

import mediacore as mc
from mediacore import errors
from signals import example, lag_of

# name -> factory; each builds a fresh stage
STAGES = {
    "highpass": lambda: mc.HighPass(sample_rate=48000),
    "highpass16k_order2": lambda: mc.HighPass(sample_rate=16000, cutoff_hz=100.0, order=2),
    "resample_48k_16k": lambda: mc.Resample(sample_rate=48000, output_sample_rate=16000),
    "resample_16k_48k": lambda: mc.Resample(sample_rate=16000, output_sample_rate=48000),
    "resample_44k1_48k": lambda: mc.Resample(sample_rate=44100, output_sample_rate=48000),
    "resample_48k_22k05": lambda: mc.Resample(sample_rate=48000, output_sample_rate=22050),
    "denoise_48k": lambda: mc.Denoise(sample_rate=48000),
    "denoise_16k_hp": lambda: mc.Denoise(sample_rate=16000, highpass_hz=80.0, max_attenuation_db=30.0),
    "vad_webrtc": lambda: mc.VAD(sample_rate=48000),
    "vad_energy": lambda: mc.VAD(sample_rate=16000, backend="energy"),
    "vad_neural": lambda: mc.VAD(sample_rate=48000, backend="neural"),
    "agc": lambda: mc.AGC(sample_rate=48000),
    "limiter": lambda: mc.Limiter(sample_rate=48000, ceiling_dbfs=-20.0),
    "gain": lambda: mc.Gain(sample_rate=48000, gain_db=-6.0),
    "loudness_meter": lambda: mc.LoudnessMeter(sample_rate=48000),
    "true_peak_limiter": lambda: mc.TruePeakLimiter(sample_rate=48000, ceiling_dbtp=-20.0),
    "loudness_normalize": lambda: mc.LoudnessNormalize(sample_rate=16000, target_lufs=-16.0, measured_lufs=-30.0),
    "chain_48k": lambda: mc.default_chain(sample_rate=48000),
    "chain_44k1": lambda: mc.default_chain(sample_rate=44100),
    "chain_22k05_no_agc": lambda: mc.default_chain(sample_rate=22050, agc=False),
}
CHUNKS = [1, 17, 160, 480, 509, None]


def signal_for(stage, seconds=0.6, kind="noisy", offset_s=0.4):
    x = example(kind, stage.sample_rate)
    start = int(offset_s * stage.sample_rate)
    return x[start: start + int(seconds * stage.sample_rate)]


def stream(stage, x, chunk):
    """Feed ``x`` in chunks, then flush; return everything that came out."""
    if chunk is None:
        parts = [stage.process(x)]
    else:
        parts = [stage.process(x[..., i: i + chunk]) for i in range(0, x.shape[-1], chunk)]
    parts.append(stage.flush())  # 1-D after 1-D input, as process() answers
    return np.concatenate(parts, axis=-1)


@pytest.mark.parametrize("chunk", CHUNKS, ids=lambda c: f"chunk{c}")
@pytest.mark.parametrize("name", STAGES)
def test_chunk_invariance(name, chunk):
    st = STAGES[name]()
    x = signal_for(st, seconds=0.3 if chunk == 1 else 0.6)
    whole = stream(st, x, None)
    chunked = stream(st, x, chunk)
    assert chunked.shape == whole.shape
    np.testing.assert_allclose(chunked, whole, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", STAGES)
def test_reset_reproducible_and_params_survive(name):
    st = STAGES[name]()
    x = signal_for(st)
    before = repr(st)
    first = st.run(x)
    st.process(signal_for(st, offset_s=2.0))  # leave state behind
    st.reset()
    second = st.run(x)
    assert repr(st) == before
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("name", STAGES)
def test_flush_returns_tail_and_run_is_aligned_length(name):
    st = STAGES[name]()
    x = signal_for(st, seconds=0.5123)
    total = stream(st, x, 333)
    assert total.shape[-1] == st.expected_output(len(x)) + st.latency
    y = st.run(x)
    assert y.shape == (st.expected_output(len(x)),)
    assert st.flush().shape[-1] == 0  # nothing left after run


@pytest.mark.parametrize("name", STAGES)
def test_declared_latency_is_measured_latency(name):
    st = STAGES[name]()
    x = signal_for(st, seconds=1.0, offset_s=0.5)
    raw = stream(st, x, 480)
    ref = x if st.output_sample_rate == st.sample_rate else resample_poly(
        x, st.output_sample_rate // np.gcd(st.sample_rate, st.output_sample_rate),
        st.sample_rate // np.gcd(st.sample_rate, st.output_sample_rate))
    assert lag_of(ref, raw, max_lag=st.latency + 200) == st.latency


@pytest.mark.parametrize("name", ["gain", "limiter", "resample_48k_16k", "resample_16k_48k"])
def test_impulse_latency(name):
    st = STAGES[name]()
    x = np.zeros(4800 if st.sample_rate == 48000 else 1600, np.float32)
    x[300] = 0.05
    y = stream(st, x, 480)
    expected = 300 * st.output_sample_rate // st.sample_rate + st.latency
    assert int(np.argmax(np.abs(y))) == expected


def test_denoise_at_zero_attenuation_is_a_pure_delay():
    st = mc.Denoise(sample_rate=48000, max_attenuation_db=0.0)
    x = signal_for(st)
    y = stream(st, x, 480)
    lat = st.latency
    np.testing.assert_allclose(y[lat: lat + len(x)], x, atol=2e-6)


@pytest.mark.parametrize("name", STAGES)
def test_batch_of_streams_equals_one_by_one(name):
    st = STAGES[name]()
    streams = np.stack([signal_for(st, offset_s=o) for o in (0.2, 1.5, 3.0)])
    streams[2] *= 0.1  # a quiet stream next to loud ones
    batch = st.run(streams)
    for i in range(3):
        single = STAGES[name]().run(streams[i])
        np.testing.assert_allclose(batch[i], single, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", STAGES)
def test_int16_and_float64_input_match_float32(name):
    st = STAGES[name]()
    x = np.round(signal_for(st) * 32767).astype(np.int16)
    y16 = st.run(x)
    y32 = st.run(x.astype(np.float32) / 32768)
    y64 = st.run(x.astype(np.float64) / 32768)
    assert y16.dtype == np.float32
    np.testing.assert_array_equal(y16, y32)
    np.testing.assert_array_equal(y64, y32)


@pytest.mark.parametrize("name", STAGES)
def test_bad_input_raises_naming_the_stage(name):
    st = STAGES[name]()
    label = st.name
    x = signal_for(st, seconds=0.05).copy()
    x[7] = np.nan
    with pytest.raises(errors.FormatError, match=rf"{label}: expected finite samples, got nan at channel 0, sample 7"):
        st.process(x)
    with pytest.raises(errors.SampleTypeError, match=rf"{label}: expected samples of dtype .* got complex128"):
        st.process(np.zeros(480, np.complex128))
    with pytest.raises(errors.FormatError, match=rf"{label}: expected samples of shape .* got shape \(1, 2, 480\)"):
        st.process(np.zeros((1, 2, 480), np.float32))
    st.process(np.zeros((2, 480), np.float32))
    with pytest.raises(errors.FormatError, match=rf"{label}: expected 2 channel\(s\), got 1"):
        st.process(np.zeros((1, 480), np.float32))
    with pytest.raises(errors.FormatError, match=rf"{label}: expected sample_rate {st.sample_rate}, got 12345"):
        st.process_frame(mc.AudioFrame(np.zeros(480, np.float32), 12345))
    assert isinstance(errors.FormatError("x"), ValueError)


@pytest.mark.parametrize("name", STAGES)
def test_empty_chunk_is_a_no_op(name):
    st = STAGES[name]()
    st.process(np.zeros(0, np.float32))
    assert st.process(np.zeros((2, 960), np.float32)).shape[0] == 2  # the empty chunk fixed nothing
    st.reset()
    x = signal_for(st)
    ref = st.run(x)
    st.reset()
    out = [st.process(np.zeros(0, np.float32)), st.process(x), st.process(np.zeros(0, np.float32)), st.flush()]
    y = np.concatenate(out)[st.latency: st.latency + len(ref)]
    np.testing.assert_array_equal(y, ref)


# ---------------------------------------------------------------------------------------------------------
# layout: an obviously transposed (samples, channels) array is refused, whatever the entry point
# ---------------------------------------------------------------------------------------------------------


def transposed_message(label, shape):
    c = shape[0]
    return (f"{label}: expected shape (channels, samples), got shape {shape}, which looks like (samples, channels) "
            f"(transpose with x.T, or declare num_channels={c} if these are {c} streams)")


@pytest.mark.parametrize("name", STAGES)
def test_transposed_array_is_refused_with_a_hint(name):
    st = STAGES[name]()
    label = st.name
    x = np.stack([signal_for(st, seconds=0.01), signal_for(st, seconds=0.01, offset_s=1.0)])  # (2, n)
    n = x.shape[1]
    for bad in (x.T, x[:1].T):  # soundfile's (samples, channels) and its always_2d mono
        with pytest.raises(errors.FormatError) as exc:
            st.process(bad)
        assert str(exc.value) == transposed_message(label, bad.shape)
        with pytest.raises(errors.FormatError) as exc:
            st.process_frame(mc.AudioFrame(bad, st.sample_rate))
        assert str(exc.value) == transposed_message(label, bad.shape)
    # run() refuses before any work: one second of stereo as (48000, 2) used to take 27 s and 6.2 GB
    long = np.zeros((st.sample_rate, 2), np.float32)
    with pytest.raises(errors.FormatError) as exc:
        st.run(long)
    assert str(exc.value) == transposed_message(label, long.shape)
    # once the stream is stereo, the same array is named against the channel count
    y = st.process(x)
    assert y.shape[0] == 2
    with pytest.raises(errors.FormatError) as exc:
        st.process(x.T)
    assert str(exc.value) == (f"{label}: expected 2 channel(s) as (channels, samples), got shape ({n}, 2) "
                              f"(it looks like (samples, channels): transpose with x.T)")
    with pytest.raises(errors.FormatError) as exc:
        st.process(np.zeros((3, n), np.float32))  # not a transposition: no hint
    assert str(exc.value) == f"{label}: expected 2 channel(s), got 3"


@pytest.mark.parametrize("make", [lambda **kw: mc.Gain(sample_rate=48000, gain_db=-6.0, **kw),
                                  lambda **kw: mc.default_chain(sample_rate=48000, denoise="dsp", **kw)],
                         ids=["gain", "chain_dsp"])
def test_many_streams_in_short_chunks_need_declared_num_channels(make):
    # more channels than samples is taken for a transposed array above 8 channels ...
    with pytest.raises(errors.FormatError) as exc:
        make().process(np.zeros((16, 10), np.float32))
    assert "declare num_channels=16 if these are 16 streams" in str(exc.value)
    # ... up to 8 channels, short chunks are fine (a stereo stream one sample at a time)
    assert make().process(np.zeros((8, 1), np.float32)).shape[0] == 8
    # a batch of 16 streams: in 10 ms chunks no declaration is needed; in 10-sample chunks it is declared
    rng = np.random.default_rng(3)
    x = (0.05 * rng.standard_normal((16, 4800))).astype(np.float32)
    ref = make().run(x)
    assert ref.shape == (16, 4800)
    st = make(num_channels=16)
    out = [st.process(x[:, i: i + 10]) for i in range(0, 4800, 10)] + [st.flush()]
    y = np.concatenate(out, axis=1)[:, st.latency: st.latency + 4800]
    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------------------------------------
# flush answers in the shape process answered in
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", STAGES)
def test_flush_has_the_shape_process_had(name):
    st = STAGES[name]()
    x = signal_for(st, seconds=0.1)
    total = st.expected_output(len(x)) + st.latency
    y = st.process(x)
    tail = st.flush()  # after 1-D input: 1-D
    assert y.ndim == 1 and tail.ndim == 1 and tail.dtype == np.float32
    assert y.size + tail.size == total
    y = st.process(x[None, :])
    tail = st.flush()  # after (1, n) input: (1, m)
    assert y.shape[0] == 1 and tail.shape == (1, total - y.shape[1])
    y = st.process(np.stack([x, x]))
    tail = st.flush()
    assert tail.shape == (2, total - y.shape[1])
    out = st.process_frame(mc.AudioFrame(x, st.sample_rate))
    assert st.flush().shape == (1, total - out.samples.shape[1])
    assert st.run(x).shape == (st.expected_output(len(x)),)
    assert st.run(x[None, :]).shape == (1, st.expected_output(len(x)))


# ---------------------------------------------------------------------------------------------------------
# a refused block leaves no trace: the stream goes on as if it had not been offered
# ---------------------------------------------------------------------------------------------------------


def _bad_blocks(st, n):
    nan = np.zeros(n, np.float32)
    nan[n // 2] = np.nan
    inf = np.zeros((1, n), np.float32)
    inf[0, 3] = -np.inf
    return [
        ("nan", lambda: st.process(nan)),
        ("inf", lambda: st.process(inf)),
        ("dtype", lambda: st.process(np.zeros(n, np.complex64))),
        ("dtype_uint8", lambda: st.process(np.zeros(n, np.uint8))),
        ("ndim", lambda: st.process(np.zeros((1, 1, n), np.float32))),
        ("no_channels", lambda: st.process(np.zeros((0, n), np.float32))),
        ("transposed", lambda: st.process(np.zeros((n, 1), np.float32))),
        ("transposed_stereo", lambda: st.process(np.zeros((n, 2), np.float32))),
        ("rate", lambda: st.process_frame(mc.AudioFrame(np.zeros(n, np.float32), st.sample_rate + 1))),
    ]


@pytest.mark.parametrize("name", STAGES)
def test_a_refused_block_does_not_poison_the_stream(name):
    st = STAGES[name]()
    x = signal_for(st, seconds=0.3)
    chunks = [x[i: i + 509] for i in range(0, len(x), 509)]
    ref = np.concatenate([st.process(c) for c in chunks] + [st.flush()])
    bad = _bad_blocks(st, 480)
    # refused before the first good block (nothing fixed yet: not even the channel count) ...
    for _, offer in bad:
        with pytest.raises((errors.FormatError, errors.SampleTypeError)):
            offer()
    outs = []
    for i, c in enumerate(chunks):
        if i == 3:  # ... and in the middle of the stream, with a channel count fixed and samples buffered
            for _, offer in bad + [("channels", lambda: st.process(np.zeros((2, 480), np.float32)))]:
                with pytest.raises((errors.FormatError, errors.SampleTypeError)):
                    offer()
        outs.append(st.process(c))
    outs.append(st.flush())
    np.testing.assert_array_equal(np.concatenate(outs), ref)
    # and a stream that starts after a refused stereo block is still free to be stereo
    with pytest.raises(errors.FormatError):
        st.process(np.zeros((480, 2), np.float32))
    assert st.process(np.zeros((2, 480), np.float32)).shape[0] == 2
