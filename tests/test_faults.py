"""The damaged-media corpus (mediacore.io.faults), fast subset: every file ends complete
and correct, or refused with exit 1 naming the file, the expected and the found, and
nothing left behind.  The whole corpus: benchmarks/corrupt_media.py."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mediacore.io import faults


@pytest.fixture(scope="module")
def subset(tmp_path_factory):
    return faults.run_corpus(tmp_path_factory.mktemp("corpus"), names=faults.FAST_SUBSET)


def test_corpus_is_big_and_covers_every_format():
    cases = faults.build_cases()
    assert len(cases) >= 100
    exts = {c.base.ext for c in cases}
    assert {".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".mp4", ".mkv", ".webm", ".mov", ".ts", ".avi",
            ".aiff", ".aac"} <= exts
    codecs = {t.codec for c in cases for t in c.base.tracks}
    assert {"vorbis", "libopus"} <= codecs
    rates = {t.rate for c in cases for t in c.base.tracks}
    assert {8000, 11025, 22050, 96000, 192000} <= rates
    assert {t.channels for c in cases for t in c.base.tracks} >= set(range(1, 9))


def test_fast_subset_every_outcome_allowed(subset):
    assert len(subset) == len(faults.FAST_SUBSET)
    fails = [f"{r.case}: {r.reason} (rc={r.rc}) {r.message[-300:]}" for r in subset if r.kind == "FAIL"]
    assert not fails, "\n".join(fails)
    kinds = {r.case: r.kind for r in subset}
    # complete files come out complete, cut ones are refused
    assert all(kinds[n] == "complete" for n in ("wav", "flac", "mp3", "opus", "m4a", "mp4", "mkv", "ts", "aiff",
                                                "aac", "wav_s24", "wav_8000", "flac_96k_24bit", "mp4_chapters",
                                                "mkv_two_tracks", "wav_6ch"))
    assert all(kinds[n] == "refused" for n in faults.FAST_SUBSET if "_cut" in n)
    assert kinds["wav_zero_samples"] == kinds["mp4_no_audio"] == kinds["empty_file"] == "refused"


def test_a_lost_ogg_page_is_refused(tmp_path):
    """A bit flip in an Ogg/Opus payload (the page fails its CRC, FFmpeg drops the rest)
    used to give exit 0 and 14 ms of a 1 s file; the last page's granule position says 1 s."""
    [r] = faults.run_corpus(tmp_path, names=("opus_flip_payload0",))
    assert r.kind == "refused", r
    assert "granule position of its last Ogg page" in r.message


def test_the_runner_catches_a_short_output(tmp_path):
    """The classifier itself: a well-formed but shorter file than the base is a FAIL, not 'complete'."""
    base = faults.FORMATS[0]
    src = tmp_path / "base.wav"
    faults.make_base(base, src)
    want = faults.truth(base, src)
    short = tmp_path / "short.wav"
    faults.make_base(replace(base, seconds=0.5), short)
    out = tmp_path / "out"
    out.mkdir()
    r = faults.classify(faults.Case("short", base), short, out, want)
    assert (r.kind, r.rc) == ("FAIL", 0)
    assert "0.5000 s (24000 samples) out, expected 1.0000 s" in r.reason
    assert list(out.iterdir()) == []
