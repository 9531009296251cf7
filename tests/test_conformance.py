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
    parts.append(stage.flush() if x.ndim == 2 else stage.flush()[0])
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
    out = [st.process(np.zeros(0, np.float32)), st.process(x), st.process(np.zeros(0, np.float32)), st.flush()[0]]
    y = np.concatenate(out)[st.latency: st.latency + len(ref)]
    np.testing.assert_array_equal(y, ref)
