"""Numbers from mediacore.bench.metrics and the corpus loader, on synthetic signals.

PESQ, STOI and DNSMOS come from the optional ``bench`` extra
(``pip install 'mediacore[bench]'``: pesq, pystoi, speechmos); their tests are
skipped when the package is missing.  The dev corpus is not needed.
"""

from __future__ import annotations

import numpy as np
import pytest

from mediacore.bench import corpus, metrics
from mediacore.errors import FormatError, MediaError

SR = 48000


def _speechlike(n: int, sr: int, seed: int = 0) -> np.ndarray:
    """Band-limited noise with a 4 Hz syllable-rate envelope: broadband, non-periodic."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sr
    carrier = rng.standard_normal(n)
    env = 0.55 + 0.45 * np.sin(2 * np.pi * 4.0 * t)
    return 0.1 * carrier * env


def _noise_at_snr(x: np.ndarray, snr_db: float, seed: int = 1) -> np.ndarray:
    """White noise orthogonalised against x, scaled to the exact SNR."""
    v = np.random.default_rng(seed).standard_normal(x.size)
    xc = x - x.mean()
    v = v - v.mean()
    v -= (v @ xc) / (xc @ xc) * xc
    return v * np.sqrt((xc @ xc) / (v @ v) / 10 ** (snr_db / 10))


# --------------------------------------------------------------------------- SI-SDR


def test_si_sdr_is_scale_invariant_and_huge_for_scaled_copy():
    x = _speechlike(SR, SR)
    assert metrics.si_sdr(x, 0.3 * x) > 100.0
    assert metrics.si_sdr(x, 3.0 * x) > 100.0


@pytest.mark.parametrize("snr", [-5.0, 0.0, 10.0, 20.0])
def test_si_sdr_of_additive_noise_equals_snr(snr):
    x = _speechlike(SR, SR)
    y = x + _noise_at_snr(x, snr)
    assert metrics.si_sdr(x, y) == pytest.approx(snr, abs=0.2)


def test_si_sdr_rejects_length_mismatch():
    x = _speechlike(1000, SR)
    with pytest.raises(FormatError):
        metrics.si_sdr(x, x[:-1])


# --------------------------------------------------------------------------- delay, align


def test_estimate_delay_recovers_123_samples():
    x = _speechlike(SR, SR, seed=3)
    out = np.concatenate([np.zeros(123), 0.5 * x])  # late and quieter
    out = out + 0.01 * np.random.default_rng(4).standard_normal(out.size)
    assert metrics.estimate_delay(x, out, SR) == 123
    # early output: negative lag
    assert metrics.estimate_delay(x, x[123:], SR) == -123


def test_estimate_delay_respects_search_range():
    x = _speechlike(SR, SR, seed=5)
    out = np.concatenate([np.zeros(480), x])  # 10 ms late
    assert metrics.estimate_delay(x, out, SR, max_ms=100) == 480
    assert abs(metrics.estimate_delay(x, out, SR, max_ms=5)) <= 240


@pytest.mark.parametrize("delay", [0, 123, -50, 5000])
def test_align_gives_exact_length(delay):
    out = np.arange(1, 1001, dtype=np.float64)
    y = metrics.align(out, delay, 900)
    assert y.shape == (900,)
    if delay == 123:
        assert y[0] == 124.0 and y[876] == 1000.0 and y[877] == 0.0
    if delay == -50:
        assert np.all(y[:50] == 0.0) and y[50] == 1.0
    if delay == 5000:
        assert not np.any(y)


def test_align_then_delay_roundtrip():
    x = _speechlike(SR // 2, SR, seed=6)
    out = np.concatenate([np.zeros(123), x, np.zeros(1440)])
    d = metrics.estimate_delay(x, out, SR)
    np.testing.assert_array_equal(metrics.align(out, d, x.size), x)


# --------------------------------------------------------------------------- resampling, level


def test_to_16k_keeps_1khz_tone_level():
    t = np.arange(SR) / SR
    tone = 0.5 * np.sin(2 * np.pi * 1000.0 * t)
    y = metrics.to_16k(tone, SR)
    assert y.size == SR // 3
    # ignore the filter's edge transients
    core = y[400:-400]
    assert metrics.level_dbfs(core) == pytest.approx(metrics.level_dbfs(tone), abs=0.1)


def test_to_16k_rejects_alias_band():
    # 12 kHz is above the 8 kHz Nyquist of the output: it must vanish (> 60 dB down)
    t = np.arange(SR) / SR
    y = metrics.to_16k(0.5 * np.sin(2 * np.pi * 12000.0 * t), SR)
    assert metrics.level_dbfs(y[400:-400]) < metrics.level_dbfs(0.5 * np.ones(1)) - 60


def test_to_16k_identity_at_16k():
    x = _speechlike(1600, 16000)
    np.testing.assert_array_equal(metrics.to_16k(x, 16000), x)


def test_level_dbfs_full_scale_sine():
    t = np.arange(SR) / SR
    assert metrics.level_dbfs(np.sin(2 * np.pi * 1000.0 * t)) == pytest.approx(-3.0103, abs=0.01)
    assert metrics.level_dbfs(np.zeros(100)) == pytest.approx(-150.0)


# --------------------------------------------------------------------------- corpus


def test_load_corpus_missing_manifest(tmp_path):
    with pytest.raises(MediaError, match="manifest"):
        corpus.load_corpus(tmp_path)


def _write_corpus(root, rows):
    import soundfile as sf

    (root / "noisy").mkdir()
    (root / "clean").mkdir()
    x = (_speechlike(4800, SR) * 0.5).astype(np.float32)
    for name in ("noisy/a.flac", "clean/a.flac", "noisy/z.flac"):
        sf.write(str(root / name), x, SR, subtype="PCM_16")
    lines = ["id,kind,clean,noisy,snr_db"] + rows
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")


def test_load_corpus_reads_clips(tmp_path):
    _write_corpus(tmp_path, ["a,noisy,clean/a.flac,noisy/a.flac,5", "z,noise-only,,noisy/z.flac,"])
    clips = corpus.load_corpus(tmp_path)
    assert [c.id for c in clips] == ["a", "z"]
    assert clips[0].snr_db == 5.0 and clips[0].has_speech
    assert clips[1].clean_path is None and clips[1].snr_db is None
    x, sr = clips[0].load_noisy()
    assert sr == SR and x.dtype == np.float32 and x.ndim == 1 and x.size == 4800


def test_load_corpus_unknown_kind(tmp_path):
    _write_corpus(tmp_path, ["a,weird,clean/a.flac,noisy/a.flac,"])
    with pytest.raises(FormatError, match="unknown kind"):
        corpus.load_corpus(tmp_path)


def test_load_corpus_missing_file(tmp_path):
    _write_corpus(tmp_path, ["b,noisy,clean/b.flac,noisy/a.flac,0"])
    with pytest.raises(MediaError, match="not found"):
        corpus.load_corpus(tmp_path)


# --------------------------------------------------------------------------- optional (bench extra)


def test_pesq_identical_is_max_and_noise_lowers_it():
    pytest.importorskip("pesq")  # bench extra
    x = _speechlike(3 * 16000, 16000, seed=7)
    assert metrics.pesq_wb(x, x) == pytest.approx(4.64, abs=0.01)
    assert metrics.pesq_wb(x, x + _noise_at_snr(x, 0.0)) < 3.0
    assert np.isnan(metrics.pesq_wb(x, np.zeros_like(x)))


def test_stoi_identical_is_one():
    pytest.importorskip("pystoi")  # bench extra
    x = _speechlike(2 * 16000, 16000, seed=8)
    assert metrics.stoi(x, x) == pytest.approx(1.0, abs=1e-6)
    assert metrics.estoi(x, x) == pytest.approx(1.0, abs=1e-6)
    assert metrics.stoi(x, x + _noise_at_snr(x, -5.0)) < 0.9


def test_dnsmos_returns_four_scores_in_range():
    pytest.importorskip("speechmos")  # bench extra
    x = _speechlike(4 * 16000, 16000, seed=9)  # shorter than 9.01 s: repeated internally
    r = metrics.dnsmos(x)
    assert set(r) == {"SIG", "BAK", "OVRL", "P808"}
    assert all(0.5 < v < 5.5 for v in r.values())


def test_missing_optional_package_names_the_extra(monkeypatch):
    import sys

    from mediacore.bench import peers
    from mediacore.errors import MissingDependencyError

    x = _speechlike(16000, 16000)
    monkeypatch.setitem(sys.modules, "pesq", None)  # makes `import pesq` fail
    with pytest.raises(MissingDependencyError, match=r"mediacore\[bench\]"):
        metrics.pesq_wb(x, x)
    monkeypatch.setitem(sys.modules, "pywebrtc_audio", None)
    with pytest.raises(MissingDependencyError, match=r"mediacore\[peers\]"):
        peers.webrtc(np.zeros(480, np.float32))
