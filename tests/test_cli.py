"""Tests of the ``mediacore`` command line (mediacore.cli).

``main([...])`` runs in-process; one subprocess run of ``python -m mediacore demo``
proves the module entry point.  Test media is generated here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import mediacore
from mediacore.cli import main

SRC_DIR = str(Path(mediacore.__file__).resolve().parent.parent)
DEMO_FILES = ("input.wav", "output.wav", "spectrogram.png", "numbers.json")


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def burst_speech(rate: int, seconds: float = 2.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tone-burst 'speech' (harmonic complex, 150 Hz with vibrato, three 0.3 s bursts) plus white
    noise at -40 dBFS.  Returns (signal float32, speech mask, pause mask); the pause mask keeps
    50 ms away from every burst and skips the first 0.1 s (noise-estimator start-up)."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    env = np.zeros(n)
    speech = np.zeros(n, bool)
    ramp = int(0.01 * rate)
    w = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
    for start in (0.25, 0.75, 1.25):
        a, b = int(start * rate), int((start + 0.3) * rate)
        if b > n:
            break
        e = np.ones(b - a)
        e[:ramp], e[-ramp:] = w, w[::-1]
        env[a:b] = e
        speech[a:b] = True
    f0 = 150.0 * (1.0 + 0.05 * np.sin(2 * np.pi * 3.0 * t))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    tone = sum(np.sin(k * phase) / k for k in range(1, 20))
    x = 0.08 * env * tone + 0.01 * rng.standard_normal(n)
    margin = int(0.05 * rate)
    near = np.convolve(speech.astype(float), np.ones(2 * margin + 1), mode="same") > 0
    pause = ~near
    pause[: int(0.1 * rate)] = False
    return x.astype(np.float32), speech, pause


def level_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.asarray(x, np.float64) ** 2) + 1e-20))


def leftovers(directory: Path, stem: str) -> list[str]:
    """Output files or temporary parts of an output named *stem* in *directory*."""
    return [p.name for p in directory.iterdir() if p.name.startswith(stem) or ".part" in p.name]


# ---------------------------------------------------------------------------
# demo
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    """One subprocess run of ``python -m mediacore demo`` (default chain)."""
    out = tmp_path_factory.mktemp("demo") / "tmp"
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC_DIR + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.run([sys.executable, "-m", "mediacore", "demo", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    (out / "stdout.txt").write_text(proc.stdout)
    return out


def test_demo_entry_point_writes_files(demo_dir):
    for name in DEMO_FILES:
        assert (demo_dir / name).stat().st_size > 0, name
    stdout = (demo_dir / "stdout.txt").read_text()
    for what in ("SI-SDR", "segmental SNR", "noise in pauses", "speech level", "realtime", "Allison Smith"):
        assert what in stdout
    with open(demo_dir / "spectrogram.png", "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"


def test_demo_numbers(demo_dir):
    m = json.loads((demo_dir / "numbers.json").read_text())
    assert m["sample_rate"] == 48000 and m["agc"] is True and m["denoise"] == "neural"
    # noise in speech pauses drops by >= 10 dB
    assert m["pause_noise_in_dbfs"] - m["pause_noise_out_dbfs"] >= 10.0
    assert m["noise_reduction_db"] == pytest.approx(m["pause_noise_in_dbfs"] - m["pause_noise_out_dbfs"], abs=0.02)
    # with the AGC on, SI-SDR still improves (its gain changes cost ~5 dB of SI-SDR, see test below)
    assert m["si_sdr_out_db"] > m["si_sdr_in_db"]
    assert m["seg_snr_out_db"] > m["seg_snr_in_db"]
    # the AGC brings the speech to within a few dB of its -23 dBFS target
    assert abs(m["speech_level_out_dbfs"] - (-23.0)) < 4.0
    assert m["realtime_factor"] > 1.0
    assert "CC-BY-SA" in m["attribution"]
    # output.wav has exactly as many samples as input.wav
    info_in, info_out = sf.info(str(demo_dir / "input.wav")), sf.info(str(demo_dir / "output.wav"))
    assert info_in.frames == info_out.frames == 6 * 48000
    assert info_in.samplerate == info_out.samplerate == 48000


def test_demo_no_agc_si_sdr_gain(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--no-agc"]) == 0
    m = json.loads((out / "numbers.json").read_text())
    assert m["si_sdr_out_db"] > m["si_sdr_in_db"] + 3.0
    assert m["pause_noise_in_dbfs"] - m["pause_noise_out_dbfs"] >= 10.0
    assert sf.info(str(out / "output.wav")).frames == sf.info(str(out / "input.wav")).frames
    printed = capsys.readouterr().out
    assert f"{m['si_sdr_out_db']:.2f}" in printed
    assert m["chain"] == "Denoise"


# ---------------------------------------------------------------------------
# clean
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [48000, 44100])
def test_clean_generated_wav(tmp_path, capsys, rate):
    x, speech, pause = burst_speech(rate)
    src, dst = tmp_path / "noisy.wav", tmp_path / "clean.wav"
    sf.write(str(src), x, rate, subtype="PCM_16")
    assert main(["clean", str(src), "-o", str(dst)]) == 0
    out = capsys.readouterr().out
    assert str(dst) in out and "realtime" in out and "2.00 s" in out
    y, rate_out = sf.read(str(dst), dtype="float32")
    assert rate_out == rate
    assert y.shape == x.shape  # exact length, mono
    x16, _ = sf.read(str(src), dtype="float32")
    drop = level_db(x16[pause]) - level_db(y[pause])
    assert drop >= 6.0, f"noise in pauses only {drop:.1f} dB lower"
    assert level_db(y[speech]) > level_db(y[pause]) + 20.0  # the bursts survive


def test_clean_options_and_quiet(tmp_path, capsys):
    x, _, _ = burst_speech(16000, seconds=1.0)
    src, dst = tmp_path / "in.wav", tmp_path / "out.flac"
    sf.write(str(src), x, 16000, subtype="PCM_16")
    # every stage off is a usage error (nothing to do)
    rc = main(["clean", str(src), "-o", str(dst), "--denoise", "none", "--no-agc", "--no-highpass", "-q"])
    assert rc == 2 and not dst.exists()
    assert "nothing to do" in capsys.readouterr().err
    rc = main(["clean", str(src), "-o", str(dst), "--no-agc", "--max-attenuation", "12", "--sample-rate", "48000",
               "--quiet"])
    assert rc == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    info = sf.info(str(dst))
    assert info.samplerate == 48000 and info.frames == 48000


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------


def _write_nan_wav(path: Path) -> None:
    x = 0.1 * np.random.default_rng(1).standard_normal(48000).astype(np.float32)
    x[30000] = np.nan
    sf.write(str(path), x, 48000, subtype="FLOAT")


@pytest.mark.parametrize("kind", ["missing", "corrupt", "nan"])
def test_clean_bad_input_exit_1(tmp_path, capsys, kind):
    src = tmp_path / f"{kind}.wav"
    if kind == "corrupt":
        src.write_bytes(np.random.default_rng(2).bytes(5000))
    elif kind == "nan":
        _write_nan_wav(src)
    dst = tmp_path / "result.wav"
    assert main(["clean", str(src), "-o", str(dst), "-q"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mediacore clean: error: ")
    assert str(src) in err
    assert "Traceback" not in err
    assert err.count("\n") == 1  # one line, no traceback
    assert leftovers(tmp_path, "result") == [] and not any(".part" in p.name for p in tmp_path.iterdir())


def test_clean_existing_output_untouched_on_error(tmp_path, capsys):
    src = tmp_path / "nan.wav"
    _write_nan_wav(src)
    dst = tmp_path / "keep.wav"
    dst.write_bytes(b"previous")
    assert main(["clean", str(src), "-o", str(dst), "-q"]) == 1
    assert dst.read_bytes() == b"previous"
    assert str(src) in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["clean", "in.wav", "-o", "out.wav", "--denoise", "bogus"],
    ["clean", "in.wav"],  # -o is required
    ["clean", "in.wav", "-o", "out.wav", "--target-level", "5"],
    ["demo", "--denoise", "bogus"],
    ["frobnicate"],
    [],
])
def test_usage_errors_exit_2(tmp_path, capsys, monkeypatch, argv):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.wav").write_bytes(b"")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "usage:" in err and "error:" in err
    assert not (tmp_path / "out.wav").exists()


def test_clean_refuses_out_equal_in(tmp_path, capsys):
    x, _, _ = burst_speech(16000, seconds=0.5)
    src = tmp_path / "same.wav"
    sf.write(str(src), x, 16000, subtype="PCM_16")
    before = src.read_bytes()
    assert main(["clean", str(src), "-o", str(src)]) == 2
    assert "differ" in capsys.readouterr().err
    assert src.read_bytes() == before


RELAY_SDP = "v=0\no=- 0 0 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 41000 RTP/AVP 111\n" \
            "a=rtpmap:111 opus/48000/2\n"


# (argv after the command's positional arguments, the error line exactly, or its start when it ends in "...")
BAD_OPTIONS = [
    (["clean", "--max-attenuation", "200"], "Denoise: expected --max-attenuation in [0.0, 80.0], got 200.0"),
    (["clean", "--denoise", "dsp", "--max-attenuation", "-5"],
     "Denoise: expected --max-attenuation in [0.0, 80.0], got -5.0"),
    (["clean", "--target-level", "5"], "AGC: expected --target-level in [-60.0, 0.0], got 5.0"),
    (["clean", "--loudness", "5"], "LoudnessNormalize: expected --loudness in [-70.0, 0.0], got 5.0"),
    (["clean", "--loudness", "-16", "--true-peak", "3"],
     "LoudnessNormalize: expected --true-peak in [-60.0, 0.0], got 3.0"),
    (["clean", "--true-peak", "-2"],
     "argument --true-peak: the ceiling applies to loudness normalisation; give --loudness"),
    (["clean", "--sample-rate", "5"], "--sample-rate ..."),
    (["clean", "--bitrate", "fast"], "argument --bitrate: ..."),
    (["clean", "--codec", "nosuchcodec"], "argument --codec: ..."),
    (["clean", "--output-ext", ".xyz"], "argument -o/--output: ..."),
    (["batch", "--jobs", "0"], "--jobs must be >= 1, got 0"),
    (["batch", "--max-attenuation", "200"], "Denoise: expected --max-attenuation in [0.0, 80.0], got 200.0"),
    (["batch", "--loudness", "5"], "LoudnessNormalize: expected --loudness in [-70.0, 0.0], got 5.0"),
    (["batch", "--true-peak", "-2"],
     "argument --true-peak: the ceiling applies to loudness normalisation; give --loudness"),
    (["batch", "--bitrate", "fast"], "argument --bitrate: ..."),
    (["batch", "--ext", ".xyz"], "argument --ext: OUT_DIR/*.xyz: cannot choose an output format for extension ..."),
    (["batch", "--missing-in-dir"], "batch: expected IN_DIR to be a directory, got ..."),
    (["relay", "--fec", "200"], "Relay: expected --fec in 0..100, got 200"),
    (["relay", "--payload-type", "300"], "Relay: expected --payload-type in 0..127, got 300"),
]


@pytest.mark.parametrize("argv,expected", BAD_OPTIONS, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_bad_option_values_are_usage_errors_naming_the_flag(tmp_path, capsys, argv, expected):
    from mediacore.cli import FLAG_OF_PARAMETER

    x, _, _ = burst_speech(16000, seconds=0.5)
    src = tmp_path / "in"
    src.mkdir()
    sf.write(str(src / "a.wav"), x, 16000, subtype="PCM_16")
    command, opts = argv[0], argv[1:]
    if command == "clean":
        out = tmp_path / ("out.xyz" if "--output-ext" in opts else "out.wav")
        opts = [o for o in opts if o not in ("--output-ext", ".xyz")]
        full = ["clean", str(src / "a.wav"), "-o", str(out), *opts]
    elif command == "batch":
        out = tmp_path / "out"
        in_dir = tmp_path / "nope" if "--missing-in-dir" in opts else src
        full = ["batch", str(in_dir), str(out), *[o for o in opts if o != "--missing-in-dir"]]
    else:
        (tmp_path / "in.sdp").write_text(RELAY_SDP)
        out = tmp_path / "out.sdp"
        full = ["relay", "--sdp", str(tmp_path / "in.sdp"), "--send", "127.0.0.1:9", "--sdp-out", str(out), *opts]
    assert main(full) == 2
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert lines[0].startswith(f"usage: mediacore {command}")
    last = lines[-1]
    prefix = f"mediacore {command}: error: "
    if expected.endswith("..."):
        assert last.startswith(prefix + expected[:-3]), last
    else:
        assert last == prefix + expected
    for name in FLAG_OF_PARAMETER:  # no Python parameter names, only flags
        assert name not in err
    assert "Traceback" not in err and "[Errno" not in err
    assert not out.exists()


def test_error_text_carries_no_errno_codes(tmp_path, capsys, monkeypatch):
    import av

    import mediacore.io
    from mediacore.errors import MediaError

    x, _, _ = burst_speech(16000, seconds=0.5)
    src = tmp_path / "in.wav"
    sf.write(str(src), x, 16000, subtype="PCM_16")
    raised = []

    def failing(*args, **kwargs):
        raise raised[-1]

    monkeypatch.setattr(mediacore.io, "clean_media", failing)
    cases = [
        # an FFmpeg error that escaped unwrapped (a ValueError: it used to end in a traceback)
        (av.error.InvalidDataError(1094995529, "Invalid data found when processing input", "cut.mp4"),
         "cut.mp4: Invalid data found when processing input"),
        # one wrapped with its errno text in the message
        (MediaError("cut.mp4: corrupt or truncated (demux error): [Errno 1094995529] Invalid data found when "
                    "processing input: 'cut.mp4'"),
         "cut.mp4: corrupt or truncated (demux error): Invalid data found when processing input: 'cut.mp4'"),
        (PermissionError(13, "Permission denied", "/srv/out.wav"), "/srv/out.wav: Permission denied"),
    ]
    for exc, expected in cases:
        raised.append(exc)
        assert main(["clean", str(src), "-o", str(tmp_path / "out.wav"), "-q"]) == 1
        assert capsys.readouterr().err == f"mediacore clean: error: {expected}\n"
    # batch: the per-file lines and the summary
    raised.append(MediaError("a.wav: corrupt or truncated (demux error): [Errno 1094995529] Invalid data found"))
    (tmp_path / "d").mkdir()
    sf.write(str(tmp_path / "d" / "a.wav"), x, 16000, subtype="PCM_16")
    assert main(["batch", str(tmp_path / "d"), str(tmp_path / "o")]) == 1
    captured = capsys.readouterr()
    assert "MediaError: a.wav: corrupt or truncated (demux error): Invalid data found" in captured.out
    assert "MediaError: a.wav: corrupt or truncated (demux error): Invalid data found" in captured.err
    assert "[Errno" not in captured.out + captured.err


def test_keyboard_interrupt_exit_130(tmp_path, capsys, monkeypatch):
    import mediacore.io

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(mediacore.io, "clean_media", interrupted)
    x, _, _ = burst_speech(16000, seconds=0.5)
    src = tmp_path / "in.wav"
    sf.write(str(src), x, 16000, subtype="PCM_16")
    assert main(["clean", str(src), "-o", str(tmp_path / "out.wav"), "-q"]) == 130
    assert "interrupted" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# info, version
# ---------------------------------------------------------------------------


def test_info(tmp_path, capsys):
    x, _, _ = burst_speech(44100, seconds=1.0)
    src = tmp_path / "probe me.wav"
    sf.write(str(src), np.stack([x, x], axis=1), 44100, subtype="PCM_16")
    assert main(["info", str(src)]) == 0
    out = capsys.readouterr().out
    assert str(src) in out and "wav" in out and "44100 Hz" in out and "2 ch" in out and "1.000 s" in out
    assert main(["info", str(tmp_path / "nope.mp4")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mediacore info: error: ") and "nope.mp4" in err


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"mediacore {mediacore.__version__}"


@pytest.mark.parametrize("command", ["clean", "batch"])
def test_chain_options_reach_the_chain(tmp_path, capsys, command):
    # --max-attenuation 0 with no AGC and no high-pass is a transparent chain: the output is the
    # input (latency compensated), so any option dropped on the way would show as a difference
    src = tmp_path / "in"
    src.mkdir()
    x = (0.1 * np.random.default_rng(0).standard_normal(48000)).astype(np.float32)
    sf.write(str(src / "a.wav"), x, 48000, subtype="FLOAT")
    opts = ["--denoise", "dsp", "--max-attenuation", "0", "--no-agc", "--no-highpass", "-q"]
    if command == "clean":
        argv = ["clean", str(src / "a.wav"), "-o", str(tmp_path / "a.wav"), *opts]
        out = tmp_path / "a.wav"
    else:
        argv = ["batch", str(src), str(tmp_path / "out"), *opts]
        out = tmp_path / "out" / "a.wav"
    assert main(argv) == 0, capsys.readouterr().err
    y, sr = sf.read(str(out), dtype="float32")
    assert sr == 48000 and y.shape == x.shape
    assert np.max(np.abs(y - x)) < 1e-4


def test_clean_with_a_trained_model_file(tmp_path, capsys):
    import shutil

    from mediacore.neural.backend import default_model_path

    model = tmp_path / "model.onnx"
    shutil.copy(default_model_path(), model)
    src = tmp_path / "in.wav"
    x = (0.1 * np.random.default_rng(1).standard_normal(48000)).astype(np.float32)
    sf.write(str(src), x, 48000, subtype="FLOAT")
    assert main(["clean", str(src), "-o", str(tmp_path / "a.wav"), "-q", "--no-agc"]) == 0
    assert main(["clean", str(src), "-o", str(tmp_path / "b.wav"), "-q", "--no-agc", "--model", str(model)]) == 0
    a, _ = sf.read(str(tmp_path / "a.wav"), dtype="float32")
    b, _ = sf.read(str(tmp_path / "b.wav"), dtype="float32")
    np.testing.assert_array_equal(a, b)  # the same weights from another file: the same output
    assert 10 * np.log10(np.mean(a ** 2) / np.mean(x ** 2)) < -20  # (white noise: suppressed)
    capsys.readouterr()
    assert main(["clean", str(src), "-o", str(tmp_path / "c.wav"), "--denoise", "dsp", "--model", str(model)]) == 2
    assert "--model is a neural denoiser model; --denoise is 'dsp'" in capsys.readouterr().err
    assert main(["clean", str(src), "-o", str(tmp_path / "c.wav"), "--model", str(tmp_path / "nope.onnx")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert not (tmp_path / "c.wav").exists()


def test_sigterm_during_clean_exit_143_nothing_left(tmp_path, capsys, monkeypatch):
    """SIGTERM while the output is being written is handled like Ctrl-C: the hidden
    temporary file is removed, one line, exit 143; the previous handler comes back."""
    import signal

    import mediacore.cli as cli

    class SelfTerminating:
        """A chain that sends this process SIGTERM in its third block."""

        latency = 0

        def __init__(self, *, sample_rate, num_channels, **options):
            self.output_sample_rate, self.channels, self.calls = sample_rate, num_channels, 0

        def process(self, x):
            self.calls += 1
            if self.calls == 3:
                os.kill(os.getpid(), signal.SIGTERM)
            return x

        def flush(self):
            return np.zeros((self.channels, 0), np.float32)

    monkeypatch.setattr(cli, "default_chain", lambda **kw: SelfTerminating(**kw))
    x, _, _ = burst_speech(16000, seconds=2.0)
    src = tmp_path / "talk.wav"
    sf.write(str(src), x, 16000, subtype="PCM_16")
    before = signal.getsignal(signal.SIGTERM)
    assert main(["clean", str(src), "-o", str(tmp_path / "talk.clean.wav"), "-q"]) == 143
    assert capsys.readouterr().err == "\nmediacore clean: terminated (SIGTERM); no partial output left\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["talk.wav"]
    assert signal.getsignal(signal.SIGTERM) == before
