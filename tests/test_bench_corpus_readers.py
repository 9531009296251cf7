"""Corpus readers: dev manifest, VoiceBank-DEMAND, DNS-Challenge, plain folder (mediacore.bench.corpus)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from mediacore.bench import corpus as C
from mediacore.bench.example import make_example_corpus
from mediacore.errors import FormatError, MediaError


def _wav(path, sr=16000, seconds=0.5, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    x = np.random.default_rng(seed).standard_normal(int(sr * seconds)) * 0.05
    sf.write(str(path), x, sr, subtype="PCM_16")


def test_manifest_layout(tmp_path):
    d = make_example_corpus(tmp_path / "dev", snrs=(-5.0, 5.0, 15.0))
    assert C.detect_layout(d) == "manifest"
    clips = C.read_corpus(d)
    assert [(c.id, c.kind, c.snr_db) for c in clips] == [
        ("n00", "noisy", -5.0), ("n01", "noisy", 5.0), ("n02", "noisy", 15.0),
        ("c00", "clean-only", None), ("z00", "noise-only", None)]
    assert clips[-1].clean_path is None
    assert C.read_corpus(d / "manifest.csv", "manifest") == clips


def test_voicebank_layout_with_snr_log(tmp_path):
    d = tmp_path / "vb"
    for name in ("p232_001", "p232_002", "p257_010"):
        _wav(d / "clean_testset_wav" / f"{name}.wav", sr=48000)
        _wav(d / "noisy_testset_wav" / f"{name}.wav", sr=48000, seed=1)
    (d / "log_testset.txt").write_text("p232_001 living 17.5\np232_002 bus 2.5\n")
    assert C.detect_layout(d) == "voicebank"
    clips = C.read_corpus(d)
    assert [(c.id, c.kind, c.snr_db) for c in clips] == [
        ("p232_001", "noisy", 17.5), ("p232_002", "noisy", 2.5), ("p257_010", "noisy", None)]
    assert clips[0].clean_path == d / "clean_testset_wav" / "p232_001.wav"
    (d / "clean_testset_wav" / "p257_010.wav").unlink()
    with pytest.raises(MediaError, match="p257_010"):
        C.read_voicebank(d)


def test_dns_layout_matched_by_fileid(tmp_path):
    d = tmp_path / "dns"
    _wav(d / "noisy" / "clnsp12_traffic_331_snr5_tl-27_fileid_7.wav")
    _wav(d / "noisy" / "clnsp3_babble_12_snr-5_tl-30_fileid_10.wav")
    _wav(d / "noisy" / "book_00001_chp_0001_reader_05511_fileid_2.wav")
    for fid in (7, 10, 2):
        _wav(d / "clean" / f"clean_fileid_{fid}.wav", seed=fid)
    assert C.detect_layout(d) == "dns"
    clips = C.read_corpus(d)
    assert [(c.id, c.snr_db) for c in clips] == [("fileid_2", None), ("fileid_7", 5.0), ("fileid_10", -5.0)]
    assert clips[1].clean_path.name == "clean_fileid_7.wav"
    assert all(c.kind == "noisy" for c in clips)
    (d / "clean" / "clean_fileid_10.wav").unlink()
    with pytest.raises(MediaError, match="10"):
        C.read_dns(d)


def test_plain_folder_is_unreferenced(tmp_path):
    d = tmp_path / "calls"
    _wav(d / "b.wav")
    _wav(d / "a.flac")
    (d / "notes.txt").write_text("not audio")
    assert C.detect_layout(d) == "folder"
    clips = C.read_corpus(d)
    assert [(c.id, c.kind, c.clean_path) for c in clips] == [("a", "unreferenced", None), ("b", "unreferenced", None)]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FormatError, match="no audio files"):
        C.read_folder(empty)


def test_unknown_layout_and_missing_dir(tmp_path):
    with pytest.raises(FormatError):
        C.read_corpus(tmp_path, "zip")
    with pytest.raises(MediaError):
        C.detect_layout(tmp_path / "nope")
