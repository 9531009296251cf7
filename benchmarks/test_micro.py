"""Micro benchmarks: one 10 ms frame through each stage, beside a peer doing the same job.

Run (single-threaded; takes about a minute)::

    PYTHONPATH=src .venv/bin/python -m pytest benchmarks/test_micro.py --benchmark-only

Every benchmark is one streaming call on a 480-sample float32 frame at 48 kHz
(cycling through 2 s of the bundled ``example_noisy.flac``), the state
carried from call to call as in a live stream.  Each object is warmed up
(numba compilation, first allocations) before it is timed.  Groups
(``benchmark.group``) put ours and the peers for one job side by side; the
summary at the end prints versions, CPU, thread counts and ours / peer ratios
of the medians measured in this same run.

Groups and peers:

* highpass: ``HighPass`` vs WebRTC APM with only ``high_pass_filter``, and
  ``scipy.signal.sosfilt`` with carried ``zi`` (same 4th-order Butterworth);
* resample: ``Resample`` 48k -> 16k vs ``soxr.ResampleStream`` (HQ) and
  ``scipy.signal.resample_poly`` (stateless, per frame);
* denoise: ``Denoise(dsp)`` (default and as configured in ``default_chain``) vs WebRTC ``NoiseSuppressor(level=2)`` and RNNoise;
* vad: ``VAD`` webrtc and energy backends vs the ``webrtcvad`` module called
  directly (float -> int16 bytes -> ``is_speech``, and on ready bytes) and
  pywebrtc ``VoiceDetector``;
* agc: ``AGC`` (level gate + limiter) and ``VAD + AGC`` vs WebRTC
  ``GainController`` (AGC2 with its own VAD and limiter);
* limiter: ``Limiter`` vs ``GainController(adaptive_digital=False)`` (AGC2's
  fixed gain + limiter);
* chain: ``default_chain(48k)`` vs the APM with HPF + NS + AGC2.
"""

from __future__ import annotations

import os

for _v in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import ctypes  # noqa: E402
import itertools  # noqa: E402
from importlib import resources  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mediacore.bench.environment import environment, format_environment  # noqa: E402

pytest.importorskip("pytest_benchmark")

RATE = 48000
FRAME = 480
WARMUP_FRAMES = 50
PACKAGES = ("numpy", "numba", "scipy", "rocket-fft", "pywebrtc-audio", "webrtcvad-wheels", "pyrnnoise", "soxr",
            "pytest-benchmark")

#: (group, role, name) -> median seconds, filled by the tests, read by the summary
_RESULTS: dict[tuple[str, str, str], float] = {}


# ----------------------------------------------------------------------- helpers
def _frames() -> np.ndarray:
    import soundfile as sf

    asset = resources.files("mediacore") / "_assets" / "example_noisy.flac"
    with resources.as_file(asset) as p:
        x, sr = sf.read(str(p), dtype="float32", always_2d=True)
    assert sr == RATE
    n = 200
    return np.ascontiguousarray(np.resize(x[:, 0], n * FRAME).reshape(n, FRAME))


FRAMES = _frames()


def _run(benchmark, group: str, role: str, name: str, proc, frames=FRAMES) -> None:
    """Warm ``proc`` up, then benchmark one call per frame, cycling through ``frames``."""
    for f in frames[:WARMUP_FRAMES]:
        proc(f)
    it = itertools.cycle(frames)
    nxt = it.__next__
    benchmark.group = group
    benchmark.name = f"{role}: {name}"
    benchmark.extra_info.update({"role": role, "job": group})
    benchmark(lambda: proc(nxt()))
    st = getattr(benchmark, "stats", None)
    if st is not None and getattr(st, "stats", None) is not None:
        _RESULTS[(group, role, name)] = st.stats.median


class _Summary:
    """Prints the environment and ours / peer ratios after pytest-benchmark's tables."""

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter):
        if not _RESULTS:
            return
        import numba

        tr = terminalreporter
        tr.section("micro benchmark summary: ours / peer (medians, same run)")
        env = environment(PACKAGES)
        env["threads"]["numba"] = numba.get_num_threads()
        for line in format_environment(env).splitlines():
            tr.write_line(line)
        tr.write_line("")
        tr.write_line("| group | ours | median µs | peer | median µs | ours / peer |")
        tr.write_line("|---|---|---:|---|---:|---:|")
        groups = sorted({g for g, _, _ in _RESULTS}, key=lambda g: list(GROUP_ORDER).index(g)
                        if g in GROUP_ORDER else 99)
        for g in groups:
            ours = [(n, t) for (gg, r, n), t in _RESULTS.items() if gg == g and r == "ours"]
            peers = [(n, t) for (gg, r, n), t in _RESULTS.items() if gg == g and r == "peer"]
            for on, ot in ours:
                for pn, pt in peers:
                    tr.write_line(f"| {g} | {on} | {ot * 1e6:.2f} | {pn} | {pt * 1e6:.2f} | {ot / pt:.2f} |")


GROUP_ORDER = ("highpass", "resample", "denoise", "vad", "agc", "limiter", "chain")


@pytest.fixture(scope="session", autouse=True)
def _summary(request):
    plugin = _Summary()
    request.config.pluginmanager.register(plugin, "mediacore_micro_summary")
    yield


# ---------------------------------------------------------------------- highpass
def test_highpass_ours(benchmark):
    from mediacore import HighPass

    _run(benchmark, "highpass", "ours", "HighPass(80 Hz, order 4)", HighPass(sample_rate=RATE).process)


def test_highpass_peer_apm(benchmark):
    import pywebrtc_audio

    apm = pywebrtc_audio.AudioProcessor(sample_rate=RATE, num_channels=1, high_pass_filter=True)
    _run(benchmark, "highpass", "peer", "webrtc APM high_pass_filter", apm.process)


def test_highpass_peer_scipy(benchmark):
    from scipy.signal import butter, sosfilt

    sos = butter(4, 80.0, "highpass", fs=RATE, output="sos")
    zi = np.zeros((sos.shape[0], 2))

    def proc(x):
        nonlocal zi
        y, zi = sosfilt(sos, x, zi=zi)
        return y

    _run(benchmark, "highpass", "peer", "scipy sosfilt (zi carried)", proc)


# ---------------------------------------------------------------------- resample
def test_resample_ours(benchmark):
    from mediacore import Resample

    _run(benchmark, "resample", "ours", "Resample 48k->16k",
         Resample(sample_rate=RATE, output_sample_rate=16000).process)


def test_resample_peer_soxr(benchmark):
    soxr = pytest.importorskip("soxr")
    rs = soxr.ResampleStream(RATE, 16000, 1, dtype="float32", quality="HQ")
    _run(benchmark, "resample", "peer", "soxr.ResampleStream HQ", rs.resample_chunk)


def test_resample_peer_scipy(benchmark):
    from scipy.signal import resample_poly

    _run(benchmark, "resample", "peer", "scipy resample_poly(1, 3) (stateless)",
         lambda x: resample_poly(x, 1, 3))


# ----------------------------------------------------------------------- denoise
def test_denoise_ours(benchmark):
    from mediacore import Denoise

    _run(benchmark, "denoise", "ours", "Denoise(dsp)", Denoise(sample_rate=RATE).process)


def test_denoise_ours_as_in_chain(benchmark):
    import mediacore

    st = [s for s in mediacore.default_chain(sample_rate=RATE).stages if s.name == "Denoise"]
    if not st:
        pytest.skip("default_chain has no Denoise stage")
    _run(benchmark, "denoise", "ours", "Denoise as in default_chain", st[0].process)


def test_denoise_peer_webrtc_ns(benchmark):
    import pywebrtc_audio

    ns = pywebrtc_audio.NoiseSuppressor(sample_rate=RATE, level=2)
    _run(benchmark, "denoise", "peer", "webrtc NoiseSuppressor(level=2)", ns.process)


def test_denoise_peer_rnnoise(benchmark):
    pytest.importorskip("pyrnnoise")
    from mediacore.bench.peers import _rnnoise_lib

    lib = _rnnoise_lib()
    state = lib.rnnoise_create(None)
    buf = np.empty(FRAME, np.float32)
    ptr = buf.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
    scale = np.float32(32768.0)

    def proc(x):
        np.multiply(x, scale, out=buf)
        lib.rnnoise_process_frame(state, ptr, ptr)
        return buf

    try:
        _run(benchmark, "denoise", "peer", "rnnoise process_frame", proc)
    finally:
        lib.rnnoise_destroy(state)


# --------------------------------------------------------------------------- vad
def test_vad_ours_webrtc(benchmark):
    from mediacore import VAD

    _run(benchmark, "vad", "ours", "VAD(webrtc)", VAD(sample_rate=RATE, backend="webrtc").process)


def test_vad_ours_energy(benchmark):
    from mediacore import VAD

    _run(benchmark, "vad", "ours", "VAD(energy)", VAD(sample_rate=RATE, backend="energy").process)


def test_vad_peer_webrtcvad(benchmark):
    import webrtcvad

    vad = webrtcvad.Vad(2)

    def proc(x):
        pcm = (np.clip(x, -1.0, 32767 / 32768) * 32768.0).astype(np.int16)
        return vad.is_speech(pcm.tobytes(), RATE)

    _run(benchmark, "vad", "peer", "webrtcvad.is_speech (float->int16 bytes)", proc)


def test_vad_peer_webrtcvad_bytes(benchmark):
    import webrtcvad

    vad = webrtcvad.Vad(2)
    pcm = [(np.clip(f, -1.0, 32767 / 32768) * 32768.0).astype(np.int16).tobytes() for f in FRAMES]
    _run(benchmark, "vad", "peer", "webrtcvad.is_speech (ready bytes)", lambda b: vad.is_speech(b, RATE), pcm)


def test_vad_peer_voice_detector(benchmark):
    import pywebrtc_audio

    vd = pywebrtc_audio.VoiceDetector(sample_rate=RATE)
    _run(benchmark, "vad", "peer", "pywebrtc VoiceDetector", vd.process)


# --------------------------------------------------------------------------- agc
def test_agc_ours(benchmark):
    from mediacore import AGC

    _run(benchmark, "agc", "ours", "AGC (level gate + limiter)", AGC(sample_rate=RATE).process)


def test_agc_ours_with_vad(benchmark):
    from mediacore import AGC, VAD, Pipeline

    p = Pipeline([VAD(sample_rate=RATE), AGC(sample_rate=RATE)])
    _run(benchmark, "agc", "ours", "VAD(webrtc) + AGC", p.process)


def test_agc_peer_gain_controller(benchmark):
    import pywebrtc_audio

    gc = pywebrtc_audio.GainController(sample_rate=RATE)
    _run(benchmark, "agc", "peer", "webrtc GainController (AGC2 + its VAD)", gc.process)


# ----------------------------------------------------------------------- limiter
def test_limiter_ours(benchmark):
    from mediacore import Limiter

    _run(benchmark, "limiter", "ours", "Limiter(1 ms look-ahead)", Limiter(sample_rate=RATE).process)


def test_limiter_peer_gain_controller_fixed(benchmark):
    import pywebrtc_audio

    gc = pywebrtc_audio.GainController(sample_rate=RATE, adaptive_digital=False, fixed_gain_db=0.0)
    _run(benchmark, "limiter", "peer", "webrtc GainController fixed gain + limiter", gc.process)


# ------------------------------------------------------------------------- chain
def test_chain_ours(benchmark):
    import mediacore

    p = mediacore.default_chain(sample_rate=RATE, denoise="dsp", agc=True)
    _run(benchmark, "chain", "ours", "default_chain(48k)", p.process)


def test_chain_peer_apm(benchmark):
    import pywebrtc_audio

    apm = pywebrtc_audio.AudioProcessor(sample_rate=RATE, num_channels=1, high_pass_filter=True,
                                        noise_suppression=True, auto_gain_control=True, ns_level=2)
    _run(benchmark, "chain", "peer", "webrtc APM HPF + NS2 + AGC2", apm.process)
