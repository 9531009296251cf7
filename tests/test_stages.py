"""Stage behaviour in numbers: kernels against SciPy references, responses, levels, SNR gains."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import signal

import mediacore as mc
from mediacore import errors
from mediacore.dsp.polyphase import design_resampler
from mediacore.stages.resample import COMMON_RATES
from signals import example, level_db, speech_mask


def tone(freq, sr, seconds=1.0, amp=0.5):
    t = np.arange(int(sr * seconds)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


# ------------------------------------------------------------------ HighPass
def test_highpass_kernel_matches_scipy_sosfilt():
    st = mc.HighPass(sample_rate=48000, cutoff_hz=80.0, order=4)
    x = example("noisy", 48000)[:48000]
    ref = signal.sosfilt(signal.butter(4, 80.0, "highpass", fs=48000, output="sos"), x.astype(np.float64))
    np.testing.assert_allclose(st.run(x), ref, atol=1e-6)


@pytest.mark.parametrize("order,min_drop_50hz", [(2, 8.0), (4, 15.0), (8, 30.0)])
def test_highpass_response(order, min_drop_50hz):
    sr = 16000
    st = mc.HighPass(sample_rate=sr, order=order)
    steady = slice(sr // 2, None)
    assert abs(level_db(st.run(tone(1000, sr))[steady]) - level_db(tone(1000, sr)[steady])) < 0.1
    assert level_db(tone(50, sr)[steady]) - level_db(st.run(tone(50, sr))[steady]) > min_drop_50hz


def test_highpass_rejects_bad_parameters_with_clear_messages():
    with pytest.raises(errors.ParameterError, match=r"HighPass: expected order as an integer in \[1, 8\], got 9"):
        mc.HighPass(sample_rate=48000, order=9)
    with pytest.raises(errors.ParameterError, match=r"HighPass: expected cutoff_hz in \[1.0, 7200.0\], got 9000"):
        mc.HighPass(sample_rate=16000, cutoff_hz=9000)
    with pytest.raises(errors.ParameterError, match="HighPass: expected sample_rate as a positive integer in Hz, got 0"):
        mc.HighPass(sample_rate=0)


# ------------------------------------------------------------------ Resample
PAIRS = [(a, b) for a, b in itertools.permutations(COMMON_RATES, 2)]


@pytest.mark.parametrize("rate_in,rate_out", PAIRS, ids=lambda r: str(r))
def test_resampler_filter_meets_ripple_and_rejection(rate_in, rate_out):
    up, down, phases, _ = design_resampler(rate_in, rate_out)
    h = phases.T.reshape(-1) / up  # prototype at rate_in * up, unit DC gain
    nyq = min(rate_in, rate_out) / 2
    fs_up = rate_in * up
    f_pass = np.linspace(0, 0.9 * nyq, 200)
    f_stop = np.linspace(nyq, min(fs_up / 2, 4 * max(rate_in, rate_out)), 2000)
    _, hp = signal.freqz(h, worN=f_pass, fs=fs_up)
    _, hs = signal.freqz(h, worN=f_stop, fs=fs_up)
    ripple = 20 * np.log10(np.abs(hp))
    assert np.max(np.abs(ripple)) <= 0.1
    assert 20 * np.log10(np.max(np.abs(hs))) <= -80.0


@pytest.mark.parametrize("rate_in,rate_out", [(48000, 16000), (16000, 48000), (44100, 48000), (22050, 16000)])
def test_resampler_kernel_matches_scipy_upfirdn(rate_in, rate_out):
    up, down, phases, delay = design_resampler(rate_in, rate_out)
    h = phases.T.reshape(-1)
    x = example("noisy", rate_in)[: rate_in // 2]
    ref = signal.upfirdn(h, x.astype(np.float64), up, down)
    st = mc.Resample(sample_rate=rate_in, output_sample_rate=rate_out)
    raw = np.concatenate([st.process(x), st.flush()])
    n = min(len(raw), len(ref))
    np.testing.assert_allclose(raw[:n], ref[:n], atol=1e-6)
    assert st.latency == delay


def test_resample_tone_level_and_alias_rejection():
    # 1 kHz passes at its level; a 9 kHz tone cannot alias into a 16 kHz output
    for rate_in, rate_out in [(44100, 48000), (48000, 16000), (8000, 48000)]:
        y = mc.Resample(sample_rate=rate_in, output_sample_rate=rate_out).run(tone(1000, rate_in))
        steady = slice(rate_out // 4, -rate_out // 4)
        assert abs(level_db(y[steady]) - level_db(tone(1000, rate_out)[steady])) < 0.1
    alias = mc.Resample(sample_rate=48000, output_sample_rate=16000).run(tone(9000, 48000))
    assert level_db(alias[4000:-4000]) - level_db(tone(9000, 48000)) < -80.0


def test_resample_same_rate_is_identity_and_bad_ratio_is_refused():
    x = example("noisy", 16000)[:1600]
    np.testing.assert_array_equal(mc.Resample(sample_rate=16000, output_sample_rate=16000).run(x), x)
    with pytest.raises(errors.ParameterError, match=r"Resample: expected a rate ratio with terms <= 1000, got 48000 -> 44099"):
        mc.Resample(sample_rate=48000, output_sample_rate=44099)


# ------------------------------------------------------------------- Denoise
def si_sdr(ref, est):
    ref = ref.astype(np.float64)
    est = est.astype(np.float64)
    a = np.dot(est, ref) / np.dot(ref, ref)
    return 10 * np.log10(np.sum((a * ref) ** 2) / np.sum((est - a * ref) ** 2))


@pytest.mark.parametrize("rate", [48000, 16000])
def test_denoise_improves_snr_and_quiets_pauses(rate):
    noisy, clean = example("noisy", rate), example("clean", rate)
    y = mc.Denoise(sample_rate=rate).run(noisy)
    assert si_sdr(clean, y) - si_sdr(clean, noisy) > 5.0
    pauses = ~speech_mask(clean, rate // 100, 50.0)
    pauses[: rate] = False  # after the first second
    assert level_db(noisy[pauses]) - level_db(y[pauses]) > 18.0


def test_denoise_leaves_clean_speech_nearly_untouched():
    clean = example("clean", 48000)
    y = mc.Denoise(sample_rate=48000).run(clean)
    assert si_sdr(clean, y) > 15.0
    speech = speech_mask(clean, 480)
    assert abs(level_db(y[speech]) - level_db(clean[speech])) < 0.5


@pytest.mark.parametrize("max_att", [10.0, 25.0])
def test_denoise_attenuation_on_stationary_noise_matches_setting(max_att):
    rng = np.random.default_rng(1)
    noise = (0.01 * rng.standard_normal(48000 * 3)).astype(np.float32)
    y = mc.Denoise(sample_rate=48000, max_attenuation_db=max_att).run(noise)
    drop = level_db(noise[48000:]) - level_db(y[48000:])
    assert max_att - 1.5 < drop < max_att + 1.5


def test_denoise_highpass_removes_rumble_zero_phase():
    rate = 16000
    rumble = tone(30, rate, 2.0, 0.1) + tone(1000, rate, 2.0, 0.1)
    st = mc.Denoise(sample_rate=rate, highpass_hz=80.0, max_attenuation_db=0.0)
    y = st.run(rumble)
    spec_in = np.abs(np.fft.rfft(rumble[rate:]))
    spec_out = np.abs(np.fft.rfft(y[rate:]))
    k30, k1k = 30 * rate // rate, 1000
    assert 20 * np.log10(spec_in[k30] / spec_out[k30]) > 18.0  # the 50 Hz bins limit the slope
    assert abs(20 * np.log10(spec_in[k1k] / spec_out[k1k])) < 0.1


def test_denoise_speech_prob_is_higher_in_speech():
    noisy, clean = example("noisy", 48000), example("clean", 48000)
    frame = mc.Denoise(sample_rate=48000).process_frame(mc.AudioFrame(noisy, 48000))
    prob = frame.meta["speech_prob"][0]
    speech = speech_mask(clean, 480)[::480][: len(prob)]
    speech_blocks = np.roll(speech, 1)  # output block b shows input block b-1
    assert prob.shape == (len(noisy) // 480,)
    assert prob[speech_blocks].mean() > prob[~speech_blocks].mean() + 0.2


def test_denoise_rejects_unsupported_rate_with_hint():
    with pytest.raises(errors.ParameterError,
                       match=r"Denoise: expected sample_rate in \(8000, 16000, 24000, 32000, 48000\), got 44100 \(insert Resample first\)"):
        mc.Denoise(sample_rate=44100)
    with pytest.raises(errors.ParameterError, match=r"Denoise: expected backend in \(.dsp.*\), got .magic."):
        mc.Denoise(sample_rate=48000, backend="magic")


# ----------------------------------------------------------------------- VAD
@pytest.mark.parametrize("backend,rate", [("webrtc", 48000), ("energy", 48000), ("energy", 16000),
                                          ("neural", 48000), ("neural", 16000)])
def test_vad_agrees_with_reference_activity(backend, rate):
    clean = example("clean", rate)
    frame = mc.VAD(sample_rate=rate, backend=backend, hangover_ms=0).process_frame(mc.AudioFrame(clean, rate))
    np.testing.assert_array_equal(frame.samples[0], clean)  # audio passes untouched
    decided = frame.meta["speech"][0]
    truth = speech_mask(clean, rate // 100, 40.0)[:: rate // 100][: len(decided)]
    assert np.mean(decided == truth) > 0.85


@pytest.mark.parametrize("rate", [48000, 16000])
def test_neural_vad_in_noise_beats_webrtc_and_reuses_the_denoiser_model(rate):
    clean, noisy = example("clean", rate), example("noisy", rate)
    truth = speech_mask(clean, rate // 100, 40.0)[:: rate // 100]

    def accuracy(frame):
        decided = frame.meta["speech"][0]
        return float(np.mean(decided == truth[: len(decided)]))

    acc = {b: accuracy(mc.VAD(sample_rate=rate, backend=b, hangover_ms=0).process_frame(mc.AudioFrame(noisy, rate)))
           for b in ("neural", "webrtc")}
    assert acc["neural"] > 0.93 and acc["neural"] > acc["webrtc"] + 0.04, acc  # measured 0.96 vs 0.86-0.91
    # after Denoise(neural) the VAD takes the probability the denoiser already computed
    pipe = mc.Pipeline([mc.Denoise(sample_rate=rate, backend="neural"),
                        mc.VAD(sample_rate=rate, backend="neural", hangover_ms=0)])
    frame = pipe.process_frame(mc.AudioFrame(noisy, rate))
    assert pipe.stages[1]._model is None  # no second inference
    assert accuracy(frame) > 0.93


def test_neural_vad_rejects_unsupported_rate():
    with pytest.raises(errors.ParameterError,
                       match=r"VAD: backend 'neural' expects sample_rate in \(16000, 48000\), got 32000"):
        mc.VAD(sample_rate=32000, backend="neural")


def test_vad_hangover_holds_exactly():
    rate, block = 16000, 160
    hiss = (0.001 * np.random.default_rng(3).standard_normal(rate // 2)).astype(np.float32)
    x = np.concatenate([hiss, tone(300, rate, 0.5, 0.3), np.zeros(rate, np.float32)])
    vad = mc.VAD(sample_rate=rate, backend="energy", hangover_ms=200)
    speech = vad.process_frame(mc.AudioFrame(x, rate)).meta["speech"][0]
    assert not speech[5:50].any() and speech[52:100].all()
    # after the burst the smoothed probability (factor 0.8) takes 3 blocks to fall below 0.5,
    # then the decision is held for 200 ms = 20 blocks
    after = speech[100:]
    assert after[:23].all() and not after[23:].any()


# ------------------------------------------------------------- AGC / Limiter / Gain
@pytest.mark.parametrize("level_in", [-45.0, -35.0, -25.0, -15.0, -10.0])
@pytest.mark.parametrize("vad", ["webrtc", "energy"])
def test_agc_reaches_target_within_2db_after_3s_without_clipping(level_in, vad):
    rate = 48000
    clean = np.tile(example("clean", rate), 2)
    active = speech_mask(clean, 480)
    x = (clean * 10 ** ((level_in - level_db(clean[active])) / 20)).astype(np.float32)
    pipe = mc.Pipeline([mc.VAD(sample_rate=rate, backend=vad), mc.AGC(sample_rate=rate, target_level_dbfs=-23.0)])
    y = pipe.run(x)
    late = active.copy()
    late[: 3 * rate] = False
    assert abs(level_db(y[late]) - (-23.0)) <= 2.0
    assert np.max(np.abs(y)) <= 10 ** (-1 / 20)


def test_agc_does_not_lift_noise_above_cap():
    rate = 16000
    rng = np.random.default_rng(2)
    noise = (10 ** (-45 / 20) * rng.standard_normal(rate * 4)).astype(np.float32)
    y = mc.AGC(sample_rate=rate, max_noise_level_dbfs=-50.0).run(noise)
    assert level_db(y[rate:]) <= level_db(noise[rate:]) + 0.5


def test_limiter_never_exceeds_ceiling_and_is_transparent_below():
    rate = 48000
    loud = example("noisy", rate) * 8.0  # about +18 dB over full scale at peaks
    lim = mc.Limiter(sample_rate=rate, ceiling_dbfs=-1.0)
    y = lim.run(loud)
    assert np.max(np.abs(y)) <= 10 ** (-1 / 20) + 1e-7
    assert np.max(np.abs(y)) > 10 ** (-1.5 / 20)
    quiet = example("noisy", rate) * 0.5
    np.testing.assert_allclose(mc.Limiter(sample_rate=rate).run(quiet), quiet, atol=1e-7)


def test_gain_scales_and_ramps_on_change():
    g = mc.Gain(sample_rate=16000, gain_db=-6.0)
    x = np.ones(320, np.float32)
    y = g.process(x)
    np.testing.assert_allclose(y, 10 ** (-6 / 20), rtol=1e-6)
    g.gain_db = 0.0
    y = g.process(x)
    assert np.all(np.diff(y) > 0) and abs(y[-1] - 1.0) < 1e-6  # a ramp, not a step


# ------------------------------------------------------------------ Pipeline
def test_pipeline_checks_rates_and_sums_latency():
    with pytest.raises(errors.FormatError,
                       match=r"Pipeline: Denoise \(stage 1\) expects sample_rate 48000, but Resample \(stage 0\) outputs 16000"):
        mc.Pipeline([mc.Resample(sample_rate=48000, output_sample_rate=16000), mc.Denoise(sample_rate=48000)])
    pipe = mc.Pipeline([mc.Resample(sample_rate=16000, output_sample_rate=48000), mc.Denoise(sample_rate=48000),
                        mc.Limiter(sample_rate=48000)])
    assert pipe.latency == pipe[0].latency + pipe[1].latency + pipe[2].latency
    assert pipe.block_size == 160
    assert mc.default_chain(sample_rate=22050).block_size == 441  # 20 ms: 22.05 kHz has no whole 10 ms


def test_pipeline_frame_meta_carries_side_results():
    rate = 48000
    pipe = mc.default_chain(sample_rate=rate)
    frame = pipe.process_frame(mc.AudioFrame(example("noisy", rate)[:4800], rate, pts=9600))
    assert frame.num_samples == 4800 and frame.pts == 9600
    for key in ("speech_prob", "speech", "gain_db"):
        assert frame.meta[key].shape == (1, 10)


def test_default_chain_keeps_rate_and_length_and_cleans():
    noisy, clean = example("noisy", 44100), example("clean", 44100)
    y = mc.default_chain(sample_rate=44100, agc=False).run(noisy)
    assert y.shape == noisy.shape
    assert si_sdr(clean, y) - si_sdr(clean, noisy) > 5.0
