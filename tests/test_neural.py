"""Neural Denoise backend: shipped model, checksum, streaming contract, quality, ONNX == torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mediacore.errors import MediaCoreError, ParameterError
from mediacore.neural import NeuralBackend, bands, kernels
from mediacore.neural.backend import MODEL_SHA256, default_model_path
from mediacore.stages.denoise import Denoise, backend_names, register_backend
from signals import example

REPO = Path(__file__).resolve().parents[1]

if "neural" not in backend_names():
    register_backend("neural", NeuralBackend)


def si_sdr(ref, est):
    ref = ref - ref.mean()
    est = est - est.mean()
    a = np.dot(est, ref) / np.dot(ref, ref)
    return 10 * np.log10(np.sum((a * ref) ** 2) / np.sum((est - a * ref) ** 2))


def stream(stage, x, chunk):
    parts = [stage.process(x[..., i: i + chunk]) for i in range(0, x.shape[-1], chunk)]
    parts.append(stage.flush())  # 1-D after 1-D input, as process() answers
    return np.concatenate(parts, axis=-1)


def test_shipped_model_found_and_checksum_verified():
    import hashlib

    path = default_model_path()
    assert path.is_file()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == MODEL_SHA256


def test_corrupt_model_raises(tmp_path, monkeypatch):
    bad = tmp_path / "denoise_neural.onnx"
    data = bytearray(default_model_path().read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    monkeypatch.setattr("mediacore.neural.backend.default_model_path", lambda: bad)
    with pytest.raises(MediaCoreError, match="sha256"):
        NeuralBackend(48000, 25.0, None)
    with pytest.raises(MediaCoreError, match="sha256"):
        NeuralBackend(48000, 25.0, None, model_path=str(bad), model_sha256=MODEL_SHA256)


def test_unsupported_rate_names_the_stage():
    with pytest.raises(ParameterError, match="Denoise.*neural.*44100"):
        Denoise(sample_rate=44100, backend="neural")


@pytest.mark.parametrize("sr", [48000, 16000])
@pytest.mark.parametrize("chunk", [1, 17, 480, 509])
def test_chunk_invariance(sr, chunk):
    x = example("noisy", sr)[: sr // 4 if chunk == 1 else sr]
    st = Denoise(sample_rate=sr, backend="neural")
    whole = stream(st, x, x.shape[-1])
    chunked = stream(st, x, chunk)
    assert chunked.shape == whole.shape
    np.testing.assert_allclose(chunked, whole, rtol=0, atol=1e-6)


@pytest.mark.parametrize("sr", [48000, 16000])
def test_latency_is_20ms_and_zero_attenuation_is_a_pure_delay(sr):
    st = Denoise(sample_rate=sr, backend="neural", max_attenuation_db=0.0)
    assert st.backend_impl.lookahead == 1  # the shipped model hears one frame ahead (ONNX metadata)
    assert st.latency == 2 * sr // 100  # 10 ms window overlap + 10 ms look-ahead
    x = example("noisy", sr)[:sr]
    y = np.concatenate([st.process(x), st.flush()])
    np.testing.assert_allclose(y[st.latency: st.latency + x.size], x, atol=1e-6)


# measured with the shipped model and its default speech floor: 7.12 dB (48 kHz), 6.51 dB (16 kHz); dsp
# backend: 6.36, 5.72 (without the speech floor: 7.18, 6.55)
@pytest.mark.parametrize("sr,min_gain_db", [(48000, 4.5), (16000, 4.5)])
def test_si_sdr_gain_on_bundled_example(sr, min_gain_db):
    clean, noisy = example("clean", sr), example("noisy", sr)
    y = Denoise(sample_rate=sr, backend="neural").run(noisy)
    gain = si_sdr(clean, y) - si_sdr(clean, noisy)
    assert gain > min_gain_db, gain


def test_speech_prob_is_filled_and_higher_in_speech():
    sr = 48000
    clean, noisy = example("clean", sr), example("noisy", sr)
    st = Denoise(sample_rate=sr, backend="neural")
    frame = st.process_frame(__import__("mediacore").AudioFrame(noisy[None, :], sample_rate=sr))
    p = frame.meta["speech_prob"][0]
    e = 10 * np.log10(np.mean(clean[: p.size * 480].reshape(-1, 480) ** 2, axis=1) + 1e-12)
    speech, silence = e > e.max() - 25, e < e.max() - 50
    assert np.all((p >= 0) & (p <= 1))
    assert p[speech].mean() > p[silence].mean() + 0.3


def test_batch_of_streams_equals_one_by_one():
    sr = 48000
    x = np.stack([example("noisy", sr)[:sr], example("clean", sr)[:sr], 0.1 * example("noisy", sr)[sr:2 * sr]])
    batch = Denoise(sample_rate=sr, backend="neural").run(x)
    for i in range(3):
        one = Denoise(sample_rate=sr, backend="neural").run(x[i])
        np.testing.assert_allclose(batch[i], one, atol=1e-5)


def test_bypass_is_click_free_and_transparent():
    sr = 48000
    x = example("noisy", sr)[: 2 * sr][None, :].astype(np.float64)
    b = NeuralBackend(sr, 25.0, None)
    b.allocate(1)
    prob = np.full((1, 100), np.nan, np.float32)
    y1 = b.process(x[:, :sr], prob)
    b.bypass = True
    y2 = b.process(x[:, sr:], prob)
    y = np.concatenate([y1, y2], axis=1)[0]
    # after the 100 ms ramp (+ one window) the output is the input, delayed by the latency (10 ms)
    start = sr + 13 * 480
    np.testing.assert_allclose(y[start:], x[0, start - b.latency: 2 * sr - b.latency], atol=1e-6)
    # no click: the largest sample-to-sample step around the switch is that of the signal
    around = slice(sr - 960, sr + 12 * 480)
    assert np.abs(np.diff(y[around])).max() <= 1.5 * np.abs(np.diff(x[0, around])).max()


def test_streaming_onnx_matches_torch_model():
    torch = pytest.importorskip("torch", reason="train extra: pip install 'mediacore[train]'")
    from mediacore.train.export import load_model

    state = REPO / "models" / "denoise_neural" / "model.pt"
    assert state.exists(), "the torch weights ship in models/denoise_neural/"
    model = load_model(str(state))
    sr = 16000
    x = example("noisy", sr)[None, : 3 * sr].astype(np.float64)
    t = x.shape[1] // 160
    b = NeuralBackend(sr, 25.0, None)
    assert b.n_features == model.n_features
    lo, w = kernels.sparse_bands(bands.band_matrix())
    spec = np.empty((1, t, 161), complex)
    feats = np.empty((1, t, b.n_features), np.float32)
    kernels.analyse(x, 160, np.zeros((1, 320)), b.window, lo, w, bands.N_BANDS, bands.LOG_EPS, spec, feats)
    b.allocate(1)
    h = b.h
    outs = []
    for i in range(t):  # one frame per ONNX call, state carried explicitly
        g, _, h = b.session.run(None, {"features": feats[:, i: i + 1], "h_in": h})
        outs.append(g)
    g_onnx = np.concatenate(outs, axis=1)
    with torch.no_grad():
        g_torch = model(torch.from_numpy(feats), torch.zeros(model.layers, 1, model.hidden))[0].numpy()
    # tolerance: float32 GRU arithmetic in a different order over 300 recurrent steps
    np.testing.assert_allclose(g_onnx, g_torch, atol=1e-4)


def _voiced(sr, period, seconds=2.0, snr_db=5.0):
    """A 19-harmonic voice-like tone of the given period (samples), amplitude-modulated at 3 Hz, and
    white noise at ``snr_db``."""
    t = np.arange(int(seconds * sr))
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t / sr) ** 2
    tone = 0.1 * env * sum(np.sin(2 * np.pi * k * t / period + k) / k for k in range(1, 20))
    noise = np.random.default_rng(0).standard_normal(t.size)
    noise *= np.sqrt(np.mean(tone ** 2) / np.mean(noise ** 2)) * 10 ** (-snr_db / 20)
    return tone, tone + noise


@pytest.mark.parametrize("sr,period", [(48000, 320), (16000, 80)])
def test_pitch_search_finds_the_period(sr, period):
    _, x = _voiced(sr, period)
    win, tmin, tmax = sr // 50, sr * 25 // 10000, sr * 16 // 1000
    n_fft = 1 << int(np.ceil(np.log2(win + tmax)))
    for end in range(sr // 2, sr, sr // 10):
        lag = kernels._pitch_lag(x, end, win, tmin, tmax, n_fft)
        # the period or a multiple of it (a 2-period lag correlates as well on a steady tone), to a sample
        assert tmin <= lag <= tmax and abs(lag - period * round(lag / period)) <= 1, lag


# measured with the shipped model, pitch filter on vs off, input 5.0 dB: speech floor off 6.57 vs 6.40 dB
# (48 kHz), 5.97 vs 5.59 dB (16 kHz); with the default speech floor 6.10 vs 5.93, 5.85 vs 5.46 (the floor
# keeps the noise between the harmonics of a confident voiced frame at -20 dB, which the comb filter lowers)
@pytest.mark.parametrize("sr,period", [(48000, 320), (16000, 80)])
def test_pitch_filter_lowers_the_noise_between_harmonics(sr, period):
    tone, x = _voiced(sr, period)
    assert Denoise(sample_rate=sr, backend="neural", pitch_filter=False).backend_impl.options() == {
        "pitch_filter": False}
    # floor off: the margins this test held before the speech floor existed
    with_filter = Denoise(sample_rate=sr, backend="neural", speech_floor_db=None).run(x)
    without = Denoise(sample_rate=sr, backend="neural", pitch_filter=False, speech_floor_db=None).run(x)
    assert si_sdr(tone, with_filter) > si_sdr(tone, without) + 0.15
    assert si_sdr(tone, without) > si_sdr(tone, x) + 0.5
    # the defaults (speech floor on): the filter still lowers the noise the floor lets through
    with_filter = Denoise(sample_rate=sr, backend="neural").run(x)
    without = Denoise(sample_rate=sr, backend="neural", pitch_filter=False).run(x)
    assert si_sdr(tone, with_filter) > si_sdr(tone, without) + 0.1
    assert si_sdr(tone, with_filter) > si_sdr(tone, x) + 0.5


class _FixedModel:
    """The shipped model's session with its outputs overridden: every gain 0, speech probability ``p``."""

    def __init__(self, session, p):
        self.session, self.p = session, p

    def run(self, names, feeds):
        gains, prob, h = self.session.run(names, feeds)
        return [np.zeros_like(gains), np.full_like(prob, self.p), h]


@pytest.mark.parametrize("sr", [48000, 16000])
@pytest.mark.parametrize("floor_db,p,expected_db", [
    (20.0, 1.0, -20.0),            # sure speech: the gains stop at the speech floor
    (20.0, 0.9, -20.0 + 120 * np.log10(0.9)),  # -25.5 dB: the floor follows p ** 6
    (20.0, 0.5, -20.0 + 120 * np.log10(0.5)),  # -56.1 dB, still above the 80 dB max attenuation
    (20.0, 0.3, -80.0),            # -82.7 dB would be below it: max_attenuation_db rules
    (20.0, 0.0, -80.0),            # no speech: max_attenuation_db alone
    (None, 1.0, -80.0),            # floor off
    (10.0, 1.0, -10.0),
])
def test_speech_floor_bounds_the_cut_in_confident_speech(sr, floor_db, p, expected_db):
    st = Denoise(sample_rate=sr, backend="neural", speech_floor_db=floor_db, pitch_filter=False)
    st.backend_impl.session = _FixedModel(st.backend_impl.session, p)
    n = np.arange(sr // 2)
    x = 0.1 * np.sin(2 * np.pi * 1000 * n / sr)
    y = np.concatenate([st.process(x), st.flush()])[st.latency:][: len(x)]
    seg = slice(sr // 10, len(x) - sr // 10)
    level_db = 20 * np.log10(np.std(y[seg]) / np.std(x[seg]))
    assert abs(level_db - expected_db) < 0.05, level_db


def test_speech_floor_option_is_checked_and_reported():
    with pytest.raises(ParameterError, match="Denoise: speech_floor_db must be in \\[0, 80\\] dB or None, got -3"):
        Denoise(sample_rate=48000, backend="neural", speech_floor_db=-3)
    with pytest.raises(ParameterError, match="speech_floor_db .* got 'loud'"):
        Denoise(sample_rate=48000, backend="neural", speech_floor_db="loud")
    with pytest.raises(ParameterError, match="speech_floor_db .* got True"):
        Denoise(sample_rate=48000, backend="neural", speech_floor_db=True)
    assert Denoise(sample_rate=48000, backend="neural",
                   speech_floor_db=np.float32(12)).backend_impl.options() == {"speech_floor_db": 12.0}
    assert Denoise(sample_rate=48000, backend="neural").backend_impl.options() == {}
    assert Denoise(sample_rate=48000, backend="neural", speech_floor_db=None).backend_impl.options() == {
        "speech_floor_db": None}


# -- deep filter (models trained with --df-bins) ---------------------------------------------------

def _df_model(tmp_path, *, bins=24, taps=3, lookahead=1, passthrough=False, seed=0):
    """A small random deep-filter model exported to ONNX.  ``passthrough``: the gains are ~0 and the
    filter's only tap is 1 on the output frame itself, so the low bins pass through the filter alone."""
    torch = pytest.importorskip("torch", reason="train extra: pip install 'mediacore[train]'")
    from mediacore.train.model import BandGRU, export_onnx

    torch.manual_seed(seed)
    model = BandGRU(hidden=16, df_bins=bins, df_taps=taps)
    with torch.no_grad():
        if passthrough:
            model.out.weight.zero_()
            model.out.bias.fill_(-30.0)
            model.df.bias[(np.arange(bins) * taps + taps - 1 - lookahead) * 2] = 1.0
        else:
            model.df.weight.normal_(0, 0.05)
    path = tmp_path / "df.onnx"
    export_onnx(model, str(path), lookahead=lookahead)
    return model, path


def test_deep_filter_kernel_matches_torch_twin_in_any_blocks():
    torch = pytest.importorskip("torch", reason="train extra: pip install 'mediacore[train]'")
    from mediacore.train.model import deep_filter

    rng = np.random.default_rng(3)
    n, t, k, taps = 2, 9, 5, 3
    spec = rng.standard_normal((n, t, 8)) + 1j * rng.standard_normal((n, t, 8))
    coefs = rng.standard_normal((n, t, k * taps * 2)).astype(np.float32)
    ref = deep_filter(torch.from_numpy(spec), torch.from_numpy(coefs).double(), k, taps).numpy()
    got, past = np.zeros((n, t, k), complex), np.zeros((n, taps - 1, k), complex)
    for a, b in [(0, 1), (1, 5), (5, 9)]:  # the history carried across blocks as the backend carries it
        frames = np.concatenate([past, spec[:, a:b, :k]], axis=1)
        kernels.deep_filter(frames, coefs[:, a:b], taps, got[:, a:b])
        past = frames[:, b - a:]
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("sr", [48000, 16000])
def test_deep_filter_taps_line_up_with_the_output_frame(tmp_path, sr):
    """With the gains shut and one unit tap on the output frame, the filter alone carries the low
    band: the output is the input delayed by exactly the declared latency (a tap one frame off
    would shift it by 10 ms)."""
    from scipy import signal

    _, path = _df_model(tmp_path, passthrough=True)
    st = Denoise(sample_rate=sr, backend="neural", model_path=str(path), max_attenuation_db=80.0,
                 pitch_filter=False, speech_floor_db=None)  # the gains stay shut whatever speech_prob says
    assert st.backend_impl.df_bins == 24 and st.latency == 2 * sr // 100
    rng = np.random.default_rng(1)
    low = signal.sosfiltfilt(signal.butter(8, 500, fs=sr, output="sos"), rng.standard_normal(sr))
    high = 0.1 * np.sin(2 * np.pi * 3000 * np.arange(sr) / sr)
    y = np.concatenate([st.process(low + high), st.flush()])
    seg = slice(sr // 10, sr - sr // 10)

    def snr(d):
        ref = low[seg]
        return 10 * np.log10(np.sum(ref ** 2) / np.sum((y[st.latency + d:][seg] - ref) ** 2))

    assert snr(0) > 50  # measured: 70.4 dB at 48 kHz, 69.7 dB at 16 kHz
    assert snr(sr // 100) < 0 and snr(-sr // 100) < 0  # measured: -3.0 dB both ways
    # and the 3 kHz tone, outside the filter's bins, goes with the shut gains (80 dB floor)
    hp = signal.sosfilt(signal.butter(8, 2000, "highpass", fs=sr, output="sos"), y)[seg]
    assert 20 * np.log10(np.std(hp) / np.std(high)) < -70  # measured: -79.9 dB


def test_deep_filter_model_streams_as_onnx_equals_torch_and_zero_taps_change_nothing(tmp_path):
    torch = pytest.importorskip("torch", reason="train extra: pip install 'mediacore[train]'")
    from mediacore.train.model import BandGRU, export_onnx

    model, path = _df_model(tmp_path)
    sr = 16000
    x = example("noisy", sr)[: sr // 2]
    st = Denoise(sample_rate=sr, backend="neural", model_path=str(path))
    b = st.backend_impl
    feats = np.random.default_rng(0).standard_normal((1, 20, b.n_features)).astype(np.float32)
    h = np.zeros((model.layers, 1, model.hidden), np.float32)
    outs = []
    for i in range(20):  # one frame per call, the recurrent state passed explicitly
        g, p, h, df = b.session.run(["gains", "speech_prob", "h_out", "df"], {"features": feats[:, i: i + 1], "h_in": h})
        outs.append(df)
    with torch.no_grad():
        df_torch = model(torch.from_numpy(feats), torch.zeros(model.layers, 1, model.hidden))[3].numpy()
    np.testing.assert_allclose(np.concatenate(outs, axis=1), df_torch, atol=1e-5)
    assert np.abs(df_torch).max() > 0.01  # the filter is live in this model
    # the same band weights with the filter at zero (as a band model starts when given a filter) ...
    zero = BandGRU(hidden=16, df_bins=24, df_taps=3)
    zero.load_band_model({k: v for k, v in model.state_dict().items() if not k.startswith("df")})
    assert float(zero.df.weight.abs().max()) == 0.0
    band = BandGRU(hidden=16)
    band.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("df")})
    export_onnx(zero, str(tmp_path / "zero.onnx"), lookahead=1)
    export_onnx(band, str(tmp_path / "band.onnx"), lookahead=1)
    # ... denoises exactly as the band model does
    y_zero = Denoise(sample_rate=sr, backend="neural", model_path=str(tmp_path / "zero.onnx")).run(x)
    y_band = Denoise(sample_rate=sr, backend="neural", model_path=str(tmp_path / "band.onnx")).run(x)
    np.testing.assert_allclose(y_zero, y_band, rtol=0, atol=1e-7)
    y_live = Denoise(sample_rate=sr, backend="neural", model_path=str(path)).run(x)
    assert np.abs(y_live - y_band).max() > 1e-3


def test_deep_filter_needs_taps_through_the_lookahead_frame(tmp_path):
    _, path = _df_model(tmp_path, taps=1, lookahead=1)
    with pytest.raises(MediaCoreError, match="1 deep-filter taps, expected at least lookahead . 1 = 2"):
        Denoise(sample_rate=16000, backend="neural", model_path=str(path))
