"""The system registry of ``mediacore bench`` (mediacore.bench.systems): names, options, streaming, alignment."""

from __future__ import annotations

import numpy as np
import pytest

from mediacore.bench import systems as S
from mediacore.errors import ParameterError
from signals import example


def test_noisy_and_dsp_stream_with_their_latency():
    x = example("noisy")[: 48000]
    noisy = S.resolve_system("noisy")
    assert noisy.kind == "reference" and noisy.declared_latency() == 0
    r = noisy.run(x)
    assert np.array_equal(r["y"][: x.size], x) and r["frame_seconds"].size == 100

    dsp = S.resolve_system("dsp")
    assert dsp.kind == "chain" and dsp.streamed and dsp.declared_latency() == 480
    y = dsp.run(x)["y"]
    assert y.size == x.size + 480  # flushed: the whole input came out, 10 ms late
    offline = dsp.make_stage().run(x)
    np.testing.assert_allclose(y[480:], offline, atol=1e-6)  # same as the latency-compensated offline run


def test_overrides_and_scoping():
    assert S.parse_overrides(["max_attenuation_db=12", "webrtc.level=3", "x=abc"]) == {
        "max_attenuation_db": 12, "webrtc.level": 3, "x": "abc"}
    with pytest.raises(ParameterError):
        S.parse_overrides(["1bad=2"])
    with pytest.raises(ParameterError):
        S.parse_overrides([".level=2"])
    o = {"max_attenuation_db": 12, "webrtc.level": 3, "dsp.window_ms": 30}
    assert S.scoped_overrides("webrtc", o) == {"max_attenuation_db": 12, "level": 3}
    assert S.scoped_overrides("dsp", o) == {"max_attenuation_db": 12, "window_ms": 30}
    a = S.resolve_system("dsp", overrides={"dsp.window_ms": 30})
    b = S.resolve_system("dsp")
    assert a.params != b.params and a.declared_latency() == 960  # a different system for the cache


def test_peer_backends_get_the_baseline_settings():
    assert "webrtc" in S.known_systems()  # peers are registered by mediacore.stages; the test extra installs them
    w = S.resolve_system("webrtc")
    assert w.kind == "backend" and "level=2" in w.params["repr"]
    assert "level=3" in S.resolve_system("webrtc", overrides={"webrtc.level": 3}).params["repr"]


def test_unknown_system_and_bad_external():
    with pytest.raises(ParameterError, match="unknown system 'nope'"):
        S.resolve_system("nope")
    with pytest.raises(ParameterError):
        S.parse_externals(["zoom"])
    assert S.parse_externals(["zoom=a/b"]) == {"zoom": __import__("pathlib").Path("a/b")}


@pytest.mark.parametrize("delay, gain, rate", [(0, 1.0, 48000), (2400, 0.1, 48000), (-480, 3.0, 48000),
                                               (9000, 0.5, 16000), (4410, 2.0, 44100)])
def test_align_external_recovers_delay_and_gain(delay, gain, rate):
    from mediacore.bench import metrics

    x = example("noisy").astype(np.float64)
    shifted = np.concatenate([np.zeros(max(delay, 0)), x[max(-delay, 0):], np.zeros(2000)]) * gain
    y = metrics.resample(shifted, 48000, rate) if rate != 48000 else shifted
    aligned, lag, g = S.align_external(y, rate, x)
    step = 48000 // np.gcd(48000, rate)  # lag resolution after resampling (3 at 16 kHz, 160 at 44.1 kHz)
    assert abs(lag - delay) <= max(1, step // 2 + 1)
    assert g == pytest.approx(1.0 / gain, rel=0.05)
    n = x.size - max(delay, 0) - 4800
    if rate == 48000:
        np.testing.assert_allclose(aligned[4800:n], x[4800:n], atol=1e-5)


def test_neural_system_params_carry_the_model_digest():
    # the bench cache is keyed by the params: a retrained model must not reuse old outputs
    from mediacore.bench.systems import resolve_system
    from mediacore.neural.backend import MODEL_SHA256

    assert resolve_system("neural").params["model_sha256"] == MODEL_SHA256
    assert "model_sha256" not in resolve_system("dsp").params


def test_a_backend_variant_under_its_own_name_runs_a_candidate_model():
    # a candidate model beside the shipped one, in one run: --set cand.backend=neural --set cand.model_path=...
    from mediacore.neural.backend import default_model_path

    path = str(default_model_path())
    cand = S.resolve_system("cand", overrides={"cand.backend": "neural", "cand.model_path": path})
    assert cand.kind == "backend" and cand.description.startswith('Denoise(backend="neural"')
    assert cand.params["overrides"]["model_path"] == path
    x = example()[:4800]
    ref = S.resolve_system("neural").make_stage()
    same = cand.make_stage()
    np.testing.assert_allclose(same.process(x[None]), ref.process(x[None]), atol=1e-6)
    with pytest.raises(ParameterError, match="expected a new name for a backend variant"):
        S.resolve_system("rnnoise", overrides={"rnnoise.backend": "neural"})
