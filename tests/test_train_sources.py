"""The wider pool / generalization-set builder (mediacore.train.sources) and the mixer's pseudo-speakers,
lead-in and joined pools. No package is downloaded here: the builders' pieces run on generated audio."""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
import soundfile as sf

from mediacore.train import sources
from mediacore.train.data import SPEED_RATIOS, SR, Mixer, Pool
from mediacore.train.smoke import make_example_pool


def test_every_package_is_on_one_side_and_none_is_reserved():
    assert sources.split_is_clean() == []
    roles = {n: s.role for n, s in sources.PACKAGES.items()}
    assert {"train", "gen"} == set(roles.values())
    # a generalization source never appears in the first pool or the dev set
    assert not [n for n, r in roles.items() if r == "gen" and n in sources.FIRST_POOL_AND_DEV]
    for name in ("alsa-utils", "asterisk-core-sounds-fr-g722", "asterisk-core-sounds-it-wav", "wesnoth-1.16-data",
                 "gcompris-qt-data", "ufoai-sound"):
        with pytest.raises(ValueError, match=f"package '{name}' is reserved for independent evaluation"):
            sources.check_allowed(name)


def test_levels_bandwidth_and_trimming_on_generated_audio():
    rng = np.random.default_rng(0)
    # 1 s of "speech" (a 10 dB louder half and a pause) inside 0.5 s of near-silence on each side
    burst = rng.standard_normal(SR).astype(np.float32) * 0.05
    burst[SR // 2:] *= 10 ** (-10 / 20)
    x = np.concatenate([np.full(SR // 2, 1e-6, np.float32), burst, np.full(SR // 2, 1e-6, np.float32)])
    t = sources.trim_silence(x, SR, keep_s=0.1)
    assert len(t) == SR + 2 * int(0.1 * SR)
    # active level: both halves are active (within 35 dB), the silence is not
    expect = 10 * np.log10(np.mean(burst.astype(np.float64) ** 2))
    assert sources.active_level_db(x) == pytest.approx(expect, abs=0.3)
    assert sources.mean_level_db(np.full(100, 0.1)) == pytest.approx(-20.0, abs=1e-6)
    # a 4 kHz low-passed noise at 16 kHz measures about 4 kHz of bandwidth
    from scipy.signal import butter, sosfilt
    lp = sosfilt(butter(10, 4000, fs=16000, output="sos"), rng.standard_normal(16000 * 4))
    assert 3800 <= sources.bandwidth_hz(lp, 16000) <= 5500


def test_decode_reads_riff_bytes_and_resamples_to_48k():
    rng = np.random.default_rng(1)
    x = (0.1 * rng.standard_normal(11025)).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, x, 11025, format="WAV", subtype="PCM_16")
    y, sr = sources.decode(buf.getvalue(), "clip.wav")
    assert sr == 11025 and len(y) == 11025
    assert np.max(np.abs(y - x)) < 1e-4
    z = sources.to_rate(y, sr)
    assert len(z) == 48000


def test_genset_clips_have_the_lead_in_the_length_and_the_snr():
    rng = np.random.default_rng(2)
    words = [(f"w{i}", (0.1 * rng.standard_normal(int(0.6 * sources.SR))).astype(np.float32)) for i in range(5)]
    n = 8 * sources.SR
    clean, used = sources._utterance(rng, words, n)
    assert len(clean) == n and len(used) >= 5
    lead = np.argmax(np.abs(clean) > 0) / sources.SR
    assert 0.3 <= lead <= 1.0
    noise, names = sources._noise_clip(rng, [("a", np.ones(sources.SR, np.float32)),
                                             ("b", np.ones(3 * sources.SR, np.float32))], n)
    assert len(noise) == n and len(names) >= 3


def test_joined_pools_pseudo_speakers_and_lead_in(tmp_path):
    a = make_example_pool(tmp_path / "a")
    b = tmp_path / "b"
    shutil.copytree(a, b)
    (b / "speech" / "example").rename(b / "speech" / "other")
    (b / "noise" / "white").rename(b / "noise" / "hiss")
    pool = Pool(f"{a},{b}", threads=1)
    assert sorted(pool.speakers) == ["example", "other"] and sorted(pool.noises) == ["hiss", "white"]
    with pytest.raises(ValueError, match="repeats the names"):
        Pool(f"{a},{a}", threads=1)
    # every example from a pseudo-speaker: the utterances are stretched by one of the speed ratios
    mixer = Mixer(pool, seed=0, p_perturb=1.0, p_clean=0.0, p_noise_only=0.0, synth_bank=2)
    sp, _, bw = mixer.example(4 * SR)
    assert sp.shape == (4 * SR,)
    ratios = [d / u for u, d in SPEED_RATIOS]
    assert any(abs(bw - 8000.0 * r) < 1 for r in ratios)
    # lead-in: about half the examples start with >= 0.5 s without speech
    mixer = Mixer(pool, seed=0, lead_in_s=2.0, p_clean=0.0, p_noise_only=0.0, synth_bank=2)
    starts = [np.argmax(np.abs(mixer.example(4 * SR)[0]) > 1e-4) / SR for _ in range(40)]
    assert 8 <= sum(s >= 0.5 for s in starts) <= 32
    with pytest.raises(ValueError, match="expected 0 <= p_perturb <= 1"):
        Mixer(pool, seed=0, p_perturb=1.5, synth_bank=2)
