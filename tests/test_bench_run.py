"""``mediacore bench`` end to end on a tiny corpus built from the bundled example (no dev corpus).

Needs the ``bench`` extra (pesq, pystoi, speechmos); skipped without it.
"""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("pesq")
pytest.importorskip("pystoi")
pytest.importorskip("speechmos")

from mediacore.bench import runner  # noqa: E402
from mediacore.bench.example import make_example_corpus  # noqa: E402
from mediacore.cli import main  # noqa: E402

SR = 48000


_SHARED: dict = {}


@pytest.fixture(scope="session")
def bench_corpus(tmp_path_factory):
    """A tiny dev-layout corpus (2 noisy clips at 0 and 10 dB, 1 clean-only, 1 noise-only; 3 s each)."""
    if "corpus" not in _SHARED:  # other test modules import this fixture: build it once per session
        _SHARED["corpus"] = make_example_corpus(tmp_path_factory.mktemp("bench_corpus"), snrs=(0.0, 10.0))
    return _SHARED["corpus"]


@pytest.fixture(scope="session")
def bench_out(bench_corpus, tmp_path_factory):
    """``mediacore bench --systems noisy,dsp`` on ``bench_corpus`` (run once per session)."""
    if "out" not in _SHARED:
        out = tmp_path_factory.mktemp("bench_out")
        rc = main(["bench", "--corpus", str(bench_corpus), "--systems", "noisy,dsp", "--out", str(out), "-q",
                   "--audio-clips", "2"])
        assert rc == 0
        _SHARED["out"] = out
    return _SHARED["out"]


def test_results_json_keys_and_values(bench_out):
    res = json.loads((bench_out / "results.json").read_text())
    assert res["schema"] == 1
    assert res["corpus"]["layout"] == "manifest"
    assert res["corpus"]["counts"] == {"noisy": 2, "clean-only": 1, "noise-only": 1, "unreferenced": 0}
    assert list(res["systems"]) == ["noisy", "dsp"]
    for name, s in res["systems"].items():
        assert set(s) >= {"kind", "description", "params", "delay", "cost", "aggregate", "per_snr", "clips"}
        assert set(s["aggregate"]) == {"noisy", "clean-only", "noise-only"}
        assert set(s["per_snr"]) == {"0", "10"}
        assert set(s["clips"]) == {"n00", "n01", "c00", "z00"}
        for key in runner.GROUP_METRICS["noisy"]:
            a = s["aggregate"]["noisy"][key]
            assert a["n"] == 2 and a["ci_low"] <= a["mean"] <= a["ci_high"]
        assert s["cost"]["mode"] == "stream"
        assert s["cost"]["frames"] == 4 * 300  # four 3 s clips, 10 ms frames
        assert 0 < s["cost"]["frame_ms_p50"] <= s["cost"]["frame_ms_p99"]
        assert s["cost"]["rtf"] > 0 and s["cost"]["streams_per_core"] == pytest.approx(1 / s["cost"]["rtf"])
    noisy, dsp = res["systems"]["noisy"], res["systems"]["dsp"]
    assert noisy["delay"]["samples"] == 0
    assert dsp["delay"]["ms"] == pytest.approx(dsp["delay"]["declared_ms"]) == pytest.approx(10.0)
    # the denoiser must beat the unprocessed input on SI-SDR and on noise attenuation
    assert dsp["aggregate"]["noisy"]["si_sdr"]["mean"] > noisy["aggregate"]["noisy"]["si_sdr"]["mean"] + 1.0
    assert dsp["aggregate"]["noise-only"]["atten_db"]["mean"] > 5.0
    assert noisy["aggregate"]["noise-only"]["atten_db"]["mean"] == pytest.approx(0.0, abs=1e-9)
    # SI-SDR of the unprocessed input follows its SNR (pink noise at 0 dB; white noise at 10 dB, whose
    # energy above 8 kHz, two thirds of it, is not seen at 16 kHz: +4.8 dB)
    assert noisy["clips"]["n00"]["si_sdr"] == pytest.approx(0.0, abs=3.0)
    assert noisy["clips"]["n01"]["si_sdr"] == pytest.approx(14.8, abs=3.0)
    cmp = [c for c in res["comparisons"] if c["metric"] == "si_sdr" and c["group"] == "noisy"]
    assert len(cmp) == 1 and cmp[0]["a"] == "noisy" and cmp[0]["b"] == "dsp" and cmp[0]["mean_diff"] < 0
    assert set(res["metrics"]["si_sdr"]) == {"label", "higher_is_better", "groups"}
    assert res["audio"] == ["n00", "n01"]


def test_report_files(bench_out):
    md = (bench_out / "report.md").read_text()
    html = (bench_out / "report.html").read_text()
    for text in (md, html):
        assert "Cost and delay" in text and "Paired comparisons" in text and "Per input SNR" in text
    assert "http://" not in html and "https://" not in html  # offline: nothing fetched
    assert html.count("data:image/png;base64,") == len(list((bench_out / "figures").glob("*.png"))) == 4
    assert html.count("<audio") == 2 * 3  # two clips x (noisy, clean, dsp)
    for rel in ("audio/n00/noisy.wav", "audio/n00/clean.wav", "audio/n00/dsp.wav"):
        assert f"src='{rel}'" in html
        info = sf.info(str(bench_out / rel))
        assert info.samplerate == SR and info.frames == 3 * SR


def test_resume_skips_cached_work(bench_out, bench_corpus, tmp_path, monkeypatch):
    out = tmp_path / "out"
    shutil.copytree(bench_out, out)
    calls = {"process": 0, "score": 0}
    real_process, real_score = runner._process_one, runner._score_one

    def process(*a, **k):
        calls["process"] += 1
        return real_process(*a, **k)

    def score(*a, **k):
        calls["score"] += 1
        return real_score(*a, **k)

    monkeypatch.setattr(runner, "_process_one", process)
    monkeypatch.setattr(runner, "_score_one", score)
    first = json.loads((out / "results.json").read_text())
    again = runner.run_bench(bench_corpus, ["noisy", "dsp"], out, progress=False, report=False)
    assert calls == {"process": 0, "score": 0}
    assert again["systems"]["dsp"]["clips"]["n00"]["si_sdr"] == first["systems"]["dsp"]["clips"]["n00"]["si_sdr"]

    # one more system: only its clips are processed and scored
    ext = tmp_path / "ext"
    ext.mkdir()
    for f in (bench_corpus / "noisy").glob("*.flac"):
        shutil.copy(f, ext / f.name)
    runner.run_bench(bench_corpus, ["noisy", "dsp"], out, externals={"copy": ext}, progress=False, report=False)
    assert calls == {"process": 4, "score": 4}

    # a changed parameter is a different system: its work is redone
    runner.run_bench(bench_corpus, ["dsp"], out, overrides={"max_attenuation_db": 12.0}, progress=False, report=False)
    assert calls == {"process": 8, "score": 8}


def test_external_dir_is_aligned_by_delay_and_gain(bench_corpus, tmp_path):
    """A copy of the input, late by 30 ms, at 16 kHz and -12 dB, scores like the input itself."""
    from mediacore.bench import metrics

    ext = tmp_path / "zoom"
    ext.mkdir()
    delay_48k = 1440
    for f in (bench_corpus / "noisy").glob("*.flac"):
        x, _ = sf.read(str(f), dtype="float64")
        y = np.concatenate([np.zeros(delay_48k), x, np.zeros(4800)]) * 0.25
        sf.write(str(ext / (f.stem + ".wav")), metrics.resample(y, SR, 16000), 16000, subtype="FLOAT")
    res = runner.run_bench(bench_corpus, ["noisy"], tmp_path / "out", externals={"zoom": ext}, progress=False,
                           report=False, audio_clips=0)
    z, n = res["systems"]["zoom"], res["systems"]["noisy"]
    assert z["kind"] == "external" and z["cost"]["mode"] == "external"
    assert z["delay"]["samples"] == delay_48k
    for cid, row in z["clips"].items():
        assert abs(row["lag"] - delay_48k) <= 3  # 16 kHz resolution
        assert row["gain"] == pytest.approx(4.0, rel=0.02)
    # band-limited to 8 kHz by the 16 kHz file, so compare the 16 kHz metrics only
    assert z["clips"]["n01"]["si_sdr"] == pytest.approx(n["clips"]["n01"]["si_sdr"], abs=0.3)
    assert z["clips"]["n01"]["pesq_wb"] == pytest.approx(n["clips"]["n01"]["pesq_wb"], abs=0.1)


def test_unreferenced_folder_scores_dnsmos_only(bench_corpus, tmp_path):
    folder = tmp_path / "calls"
    folder.mkdir()
    for cid in ("n00", "n01"):
        x, _ = sf.read(str(bench_corpus / "noisy" / f"{cid}.flac"), dtype="float32")
        sf.write(str(folder / f"call_{cid}.wav"), x[::3], 16000, subtype="PCM_16")  # crude 16 kHz copy
    res = runner.run_bench(folder, ["noisy", "dsp"], tmp_path / "out", progress=False, audio_clips=1)
    assert res["corpus"]["layout"] == "folder"
    for s in res["systems"].values():
        assert set(s["aggregate"]) == {"unreferenced"}
        assert set(s["aggregate"]["unreferenced"]) == {"SIG", "BAK", "OVRL", "P808"}
        assert all(1.0 < r["OVRL"] < 5.0 for r in s["clips"].values())
        assert s["per_snr"] == {}
    assert (tmp_path / "out" / "report.html").is_file()


def test_cli_bench_usage_errors(bench_corpus, tmp_path, capsys):
    assert main(["bench", "--corpus", str(bench_corpus), "--systems", "nope", "--out", str(tmp_path / "o"), "-q"]) == 1
    assert "unknown system 'nope'" in capsys.readouterr().err
    assert main(["bench", "--corpus", str(bench_corpus), "--out", str(tmp_path / "o"), "--external", "noequals"]) == 2
    assert main(["bench", "--corpus", str(bench_corpus), "--out", str(tmp_path / "o"), "--jobs", "0"]) == 2
    assert main(["bench", "--corpus", str(bench_corpus), "--out", str(tmp_path / "o"), "--clips", "zz", "-q"]) == 1


def test_jobs_2_gives_the_same_scores(bench_corpus, bench_out, tmp_path):
    res = runner.run_bench(bench_corpus, ["dsp"], tmp_path / "out", jobs=2, progress=False, report=False,
                           audio_clips=0)
    ref = json.loads((bench_out / "results.json").read_text())["systems"]["dsp"]["clips"]
    for cid, row in res["systems"]["dsp"]["clips"].items():
        for k, v in row.items():
            if isinstance(v, float) and k != "rtf" and not math.isnan(v):
                assert v == pytest.approx(ref[cid][k], abs=1e-6), (cid, k)
