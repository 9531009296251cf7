"""benchmarks/cross_sets.py: the mixing rule and the report's arithmetic (no corpus or pool needed)."""

import importlib.util
import re
from pathlib import Path

import numpy as np

_SPEC = importlib.util.spec_from_file_location(
    "cross_sets", Path(__file__).resolve().parents[1] / "benchmarks" / "cross_sets.py")
cross_sets = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(cross_sets)


class _Levels:
    """Stand-in for the corpus tools: active level = mean level = RMS in dBFS (steady signals)."""

    @staticmethod
    def _db(x):
        return 10 * np.log10(np.mean(np.asarray(x, np.float64) ** 2))

    def p56_active_level(self, x):
        return self._db(x), 1.0

    def mean_level(self, x):
        return self._db(x)


def test_cross_mix_sets_speech_level_and_snr():
    rng = np.random.default_rng(0)
    t = np.arange(48000) / 48000
    speech = 0.3 * np.sin(2 * np.pi * 220 * t)
    noise = rng.standard_normal(48000) * 0.05
    clean, mix = cross_sets._cross_mix(speech, noise, -5.0, _Levels())
    lv = _Levels()
    assert abs(lv._db(clean) - -26.0) < 1e-9  # no anti-clip gain needed at these levels
    assert abs(lv._db(clean) - lv._db(mix - clean) - -5.0) < 1e-9
    # a loud mixture: one gain on both, the SNR is kept and the peak is 0.99
    clean, mix = cross_sets._cross_mix(speech, noise * 0 + np.sign(noise), -30.0, _Levels())
    assert abs(np.abs(mix).max() - 0.99) < 1e-12
    assert abs(lv._db(clean) - lv._db(mix - clean) - -30.0) < 1e-9


def _scored():
    # 4 clips: two noise categories, two SNRs; system "a" is 0.5 above "b" on music, equal on hum
    rows = []
    for i, (cat, snr, a, b) in enumerate([("music", -5, 2.5, 2.0), ("music", 0, 3.0, 2.5),
                                           ("hum", -5, 2.0, 2.0), ("hum", 0, 3.0, 3.0)]):
        s = {name: dict(SIG=v, BAK=v, OVRL=v, pesq_wb=v, si_sdr=0.0) for name, v in
             (("input", 1.0), ("a", a), ("b", b))}
        rows.append(dict(id=f"x{i}", snr_db=snr, noise_category=cat, speaker="s", scores=s))
    return rows


def test_report_means_per_snr_and_category(capsys):
    cross_sets.report("toy", _scored(), ["a", "b"])
    out = capsys.readouterr().out
    nums = lambda label: [float(v) for v in re.search(rf"^{label}\s+(.*)$", out, re.M).group(1).split()]  # noqa: E731
    # means: input 1.0, a = (2.5 + 3 + 2 + 3) / 4, b = (2 + 2.5 + 2 + 3) / 4
    assert nums("a")[2] == 2.625 and nums("b")[2] == 2.375
    # per SNR (OVRL of input, a, b, then n)
    assert nums("-5") == [1.0, 2.25, 2.0, 2.0]
    assert nums("0") == [1.0, 3.0, 2.75, 2.0]
    # per noise category
    assert nums("music") == [1.0, 2.75, 2.25, 2.0]
    assert nums("hum") == [1.0, 2.5, 2.5, 2.0]


def test_model_option_names_a_candidate_and_rejects_bad_specs(tmp_path):
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"x")
    assert cross_sets.parse_model_option(f"cand={onnx}") == ("cand", str(onnx.resolve()))
    for spec, words in [("cand", "expected NAME=PATH"), (f"={onnx}", "expected NAME=PATH"),
                        (f"rnnoise={onnx}", "is taken"), (f"input={onnx}", "is taken"),
                        (f"cand={tmp_path / 'missing.onnx'}", "no model file")]:
        try:
            cross_sets.parse_model_option(spec)
        except ValueError as exc:
            assert words in str(exc), (spec, exc)
        else:
            raise AssertionError(f"{spec!r} was accepted")


def test_voices_in_noise_reads_the_babble_sources():
    babble = {"category": "babble", "source": "sum of hedgewars-mobster, asterisk-ivrvoice-ru, fotaq-npc: "
                                              "speech/hedgewars-mobster/Hurry.flac;speech/fotaq-npc/x.flac"}
    assert cross_sets.voices_in_noise(babble) == {"hedgewars-mobster", "asterisk-ivrvoice-ru", "fotaq-npc"}
    assert cross_sets.voices_in_noise({"category": "music", "source": "usr/share/games/x.ogg"}) == set()
    # the dev manifest names the Russian prompt voice differently from the pool
    assert cross_sets.DEV_TO_POOL_SPEAKER["ivrvoice-ru-f"] in cross_sets.voices_in_noise(babble)
