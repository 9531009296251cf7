"""Property-based fuzzing (hypothesis) of every stage and the pipeline.

A stream of chunks is drawn per example: good ones (speech-like noise, NaN-free DC,
full-scale square waves, denormals, silence, 0..100000 samples, 1-D or 2-D, int16 /
float64 too) and bad ones (NaN/Inf, wrong dtype, ndim, channel count, transposed
layout, wrong sample rate).  For every stage:

* nothing raises but the library's own errors, and each names the stage and says
  "expected ... got ...";  an obviously transposed array is refused with a hint;
* every good chunk's output is float32, finite, and equal to what a second
  instance that never saw the bad chunks gives for the same good chunks (a refused
  chunk leaves no trace), through to ``flush()``.

Examples per stage: 6 by default (the whole file stays well under a minute);
``MEDIACORE_FUZZ=full`` runs 1,000 (benchmarks/README.md has the command and the
counts), ``MEDIACORE_FUZZ=<n>`` runs n.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import mediacore as mc  # noqa: E402
from mediacore import errors  # noqa: E402
from test_conformance import STAGES  # noqa: E402

_PROFILE = os.environ.get("MEDIACORE_FUZZ", "ci")
_N = {"ci": 6, "full": 1000}.get(_PROFILE) or int(_PROFILE)
settings.register_profile("mediacore", max_examples=_N, deadline=None, derandomize=_PROFILE == "ci",
                          suppress_health_check=list(HealthCheck), print_blob=True)
FUZZ = settings.get_profile("mediacore")

#: total samples drawn per example are kept under this (the neural stages run ~50x real time)
MAX_TOTAL = 160_000
OWN_ERRORS = (errors.FormatError, errors.SampleTypeError, errors.ParameterError)
TINY = np.float32(1e-40)  # a float32 denormal


def _signal(kind: str, ch: int, n: int, seed: int, amp: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    if kind == "noise":
        x = amp * rng.standard_normal((ch, n)) / 3
    elif kind == "dc":
        x = np.full((ch, n), amp * (1 if seed % 2 else -1))
    elif kind == "square":  # full scale
        x = np.where((t // (7 + seed % 200)) % 2 == 0, 1.0, -1.0)[None, :].repeat(ch, 0)
    elif kind == "denormal":
        x = TINY * rng.standard_normal((ch, n))
    elif kind == "sine":
        x = amp * np.sin(2 * np.pi * (50 + seed % 5000) * t / 48000)[None, :].repeat(ch, 0)
    else:
        x = np.zeros((ch, n))
    return np.clip(x, -1.0, 1.0).astype(np.float32)


SIZES = st.one_of(st.sampled_from([0, 1, 2, 17, 159, 160, 479, 480, 481, 509, 960]),
                  st.integers(1, 4800), st.integers(1, 100_000))
GOOD = st.fixed_dictionaries({
    "kind": st.sampled_from(["noise", "dc", "square", "denormal", "sine", "zeros"]),
    "n": SIZES,
    "seed": st.integers(0, 2**16),
    "amp": st.floats(0.0, 1.0),
    "dtype": st.sampled_from(["float32", "float32", "float32", "float64", "int16", "int32"]),
    "one_d": st.booleans(),
})
BAD = st.sampled_from(["nan", "inf", "-inf", "dtype_complex", "dtype_uint8", "dtype_float16", "dtype_bool",
                       "dtype_str", "ndim3", "ndim0", "no_channels", "channels+1", "transposed", "rate"])
CHUNKS = st.lists(st.one_of(GOOD.map(lambda g: ("good", g)), BAD.map(lambda b: ("bad", b))),
                  min_size=2, max_size=10)


def _good_array(g: dict, ch: int) -> np.ndarray:
    x = _signal(g["kind"], ch, g["n"], g["seed"], g["amp"])
    if g["dtype"] == "float64":
        x = x.astype(np.float64)
    elif g["dtype"] in ("int16", "int32"):
        info = np.iinfo(g["dtype"])
        x = np.clip(np.rint(x.astype(np.float64) * (info.max + 1)), info.min, info.max).astype(g["dtype"])
    return x[0] if ch == 1 and g["one_d"] else x


def _must_say(stage, kind: str) -> str:
    """Text the error for a bad block of *kind* must contain."""
    if kind == "transposed":
        return "transpose with x.T"
    if kind == "rate":
        return f"expected sample_rate {stage.sample_rate}, got {stage.sample_rate + 1}"
    return "expected"


def _offer_bad(stage, kind: str, ch: int, n: int) -> None:
    """Offer one bad block."""
    n = max(n, 10 + ch)
    x = np.zeros((ch, n), np.float32)
    if kind in ("nan", "inf", "-inf"):
        x[ch - 1, n // 2] = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf}[kind]
        stage.process(x)
    elif kind.startswith("dtype"):
        dt = {"dtype_complex": np.complex64, "dtype_uint8": np.uint8, "dtype_float16": np.float16,
              "dtype_bool": np.bool_, "dtype_str": "<U3"}[kind]
        stage.process(np.zeros((ch, n), dt))
    elif kind == "ndim3":
        stage.process(np.zeros((1, ch, n), np.float32))
    elif kind == "ndim0":
        stage.process(np.float32(0.5))
    elif kind == "no_channels":
        stage.process(np.zeros((0, n), np.float32))
    elif kind == "channels+1":
        stage.process(np.zeros((ch + 1, n), np.float32))
    elif kind == "transposed":
        stage.process(np.ascontiguousarray(x.T))
    elif kind == "rate":
        stage.process_frame(mc.AudioFrame(x, stage.sample_rate + 1))


def _check_error(stage, exc: BaseException, must: str, kind: str) -> None:
    msg = str(exc)
    assert isinstance(exc, OWN_ERRORS), f"{kind}: {type(exc).__name__}: {msg}"
    assert msg.startswith(f"{stage.name}: "), f"{kind}: the error does not name the stage: {msg}"
    assert "expected" in msg and "got" in msg, f"{kind}: no expected/got: {msg}"
    assert must in msg, f"{kind}: {must!r} not in {msg!r}"


def fuzz_stream(make, chunks, ch: int) -> dict:
    """Feed *chunks* to a stage and, the good ones only, to a twin; compare every output."""
    stage, twin = make(), make()
    counts = {"good": 0, "bad": 0, "samples": 0}
    total = 0
    stream_ch = None  # fixed by the first non-empty good chunk
    for what, spec in chunks:
        if what == "good":
            if total + spec["n"] > MAX_TOTAL:
                continue
            total += spec["n"]
            x = _good_array(spec, ch)
            y, y_ref = stage.process(x), twin.process(x)
            assert y.dtype == np.float32 and y.ndim == x.ndim, (y.dtype, y.shape, x.shape)
            if y.ndim == 2:
                assert y.shape[0] == ch
            assert np.isfinite(y).all(), f"{stage.name}: non-finite output for {spec}"
            np.testing.assert_array_equal(y, y_ref)
            counts["good"] += 1
            counts["samples"] += spec["n"]
            if spec["n"]:
                stream_ch = ch
        else:
            if spec == "channels+1" and stream_ch is None:
                continue  # nothing fixed the count yet: ch + 1 channels are a valid stream
            with pytest.raises(Exception) as info:
                _offer_bad(stage, spec, ch, 480)
            _check_error(stage, info.value, _must_say(stage, spec), spec)
            counts["bad"] += 1
    tail, tail_ref = stage.flush(), twin.flush()
    assert np.isfinite(tail).all()
    np.testing.assert_array_equal(tail, tail_ref)
    return counts


def _report(name: str, tally: dict) -> None:
    if _PROFILE != "ci":  # shown with -s: the counts benchmarks/README.md quotes
        print(f"\nfuzz {name}: {tally['examples']} examples, {tally['good']} good chunks "
              f"({tally['samples']} samples), {tally['bad']} refused chunks, 0 crashes")


@pytest.mark.parametrize("name", STAGES)
def test_fuzz_stage(name):
    make = STAGES[name]
    tally = dict.fromkeys(("examples", "good", "bad", "samples"), 0)

    @FUZZ
    @given(chunks=CHUNKS, ch=st.integers(1, 3))
    def run(chunks, ch):
        for k, v in fuzz_stream(make, chunks, ch).items():
            tally[k] += v
        tally["examples"] += 1

    run()
    assert tally["examples"] >= min(_N, 5)
    _report(name, tally)


def test_fuzz_pipeline_of_every_kind_of_stage():
    def make():
        return mc.Pipeline([mc.HighPass(sample_rate=44100), mc.Resample(sample_rate=44100, output_sample_rate=16000),
                            mc.Denoise(sample_rate=16000, backend="dsp"), mc.VAD(sample_rate=16000, backend="energy"),
                            mc.AGC(sample_rate=16000), mc.Limiter(sample_rate=16000),
                            mc.Resample(sample_rate=16000, output_sample_rate=48000)])

    @FUZZ
    @given(chunks=CHUNKS, ch=st.integers(1, 2))
    def run(chunks, ch):
        fuzz_stream(make, chunks, ch)

    run()


@FUZZ
@given(n=st.integers(9, 5000), ch=st.integers(1, 8), name=st.sampled_from(sorted(STAGES)))
def test_transposed_is_refused_with_a_hint_before_any_work(n, ch, name):
    """(samples, channels) with samples > 8 is refused on a fresh stage, and on one whose
    channel count is fixed, with a hint to transpose; the stage then works as new."""
    stage = STAGES[name]()
    x = np.zeros((n, ch), np.float32)
    with pytest.raises(errors.FormatError, match="transpose with x.T"):
        stage.process(x)
    with pytest.raises(errors.FormatError, match="transpose with x.T"):
        stage.run(x)
    assert stage.process(np.zeros((ch, 480), np.float32)).shape[0] == ch
    if n != ch:
        with pytest.raises(errors.FormatError, match=rf"{stage.name}: expected {ch} channel\(s\) as .* transpose"):
            stage.process(x)
