"""mediacore.batch: local, process pool and a real dask.distributed cluster
(scheduler and two workers as separate processes on 127.0.0.1)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from mediacore.batch import BatchSummary, batch_clean, find_media
from mediacore.cli import main
from mediacore.errors import ParameterError
from mediacore.io import read_audio
from mediacore.io._av import float_to_frame

RATE = 48000
CHAIN = {"denoise": "dsp", "agc": True}


def tone(n: int, seed: int, channels: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / RATE
    f = 200 + 37 * seed
    x = [0.2 * np.sin(2 * np.pi * (f + 50 * c) * t) + 0.03 * rng.standard_normal(n) for c in range(channels)]
    return np.asarray(x, np.float32)


def make_mp4(path: Path, seconds: float, seed: int) -> None:
    """64x48 H.264 at 10 fps + mono AAC."""
    n = int(seconds * RATE)
    x = tone(n, seed)
    with av.open(str(path), "w") as oc:
        vs = oc.add_stream("libx264", rate=10)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        a = oc.add_stream("aac", rate=RATE)
        a.layout = "mono"
        a.codec_context.open()
        for i in range(int(seconds * 10)):
            vf = av.VideoFrame.from_ndarray(np.full((48, 64, 3), (i * 20 + seed) % 255, np.uint8), format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, 10)
            oc.mux(vs.encode(vf))
        oc.mux(vs.encode(None))
        cc = a.codec_context
        for i in range(0, n, cc.frame_size):
            f = float_to_frame(x[:, i: i + cc.frame_size], cc.format.name, "mono", RATE)
            f.pts, f.time_base = i, Fraction(1, RATE)
            oc.mux(a.encode(f))
        oc.mux(a.encode(None))


def make_corpus(root: Path, n_files: int = 20) -> float:
    """wav / flac / mp4 files (some in a subfolder); returns the total audio seconds."""
    total = 0.0
    for i in range(n_files):
        seconds = 0.3 + 0.05 * (i % 5)
        sub = root / ("sub" if i % 4 == 3 else "")
        sub.mkdir(parents=True, exist_ok=True)
        if i % 5 == 4:
            make_mp4(sub / f"clip{i:02d}.mp4", seconds, i)
        elif i % 5 == 2:
            sf.write(sub / f"clip{i:02d}.flac", tone(int(seconds * RATE), i, 2).T, RATE, subtype="PCM_16")
        else:
            sf.write(sub / f"clip{i:02d}.wav", tone(int(seconds * RATE), i).T, RATE, subtype="PCM_16")
        total += seconds
    return total


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    total = make_corpus(root)
    return root, total


@pytest.fixture(scope="module")
def local_run(corpus, tmp_path_factory):
    root, total = corpus
    out = tmp_path_factory.mktemp("local")
    summary = batch_clean(root, out, chain_options=CHAIN)
    return out, summary


# ---------------------------------------------------------------------------
# local
# ---------------------------------------------------------------------------


def test_local_batch_outputs_and_summary(corpus, local_run):
    root, total = corpus
    out, s = local_run
    assert isinstance(s, BatchSummary)
    assert (s.files, s.done, s.skipped, s.failed) == (20, 20, 0, 0)
    assert s.audio_s == pytest.approx(total, abs=1e-6)
    assert s.audio_hours == pytest.approx(total / 3600)
    assert s.speed_x == pytest.approx(total / s.wall_s)
    rel_in = sorted(os.path.relpath(p, root) for p in find_media(str(root)))
    assert sorted(tree(out)) == rel_in  # same names, same subfolders, nothing else (no temporaries)
    for rel in rel_in:
        x, sr = read_audio(root / rel)
        y, sr2 = read_audio(out / rel)
        assert sr2 == sr and y.shape[0] == x.shape[0]
        frame = 1024 if rel.endswith(".mp4") else 0
        assert abs(y.shape[1] - x.shape[1]) <= frame
    assert "20 file(s): 20 cleaned, 0 skipped (already done), 0 failed" in s.to_text()


def test_resume_skips_finished_files_and_removes_stale_temporaries(corpus, local_run, tmp_path):
    root, _ = corpus
    out, _ = local_run
    work = tmp_path / "out"
    shutil.copytree(out, work)
    # a killed run: two outputs missing, one stale temporary left behind
    (work / "clip00.wav").unlink()
    (work / "sub" / "clip03.wav").unlink()
    (work / ".clip00.abc123.part.wav").write_bytes(b"half")
    s = batch_clean(root, work, chain_options=CHAIN)
    assert (s.done, s.skipped, s.failed) == (2, 18, 0)
    assert {os.path.basename(r.input_path) for r in s.results if r.status == "done"} == {"clip00.wav", "clip03.wav"}
    assert tree(work) == tree(out)  # the resumed outputs are identical to the first run's
    s2 = batch_clean(root, work, chain_options=CHAIN)
    assert (s2.done, s2.skipped) == (0, 20) and s2.audio_s == 0.0


def test_thread_executor_matches_local(corpus, local_run, tmp_path):
    root, _ = corpus
    out, _ = local_run
    with ThreadPoolExecutor(2) as pool:
        s = batch_clean(root, tmp_path, executor=pool, chain_options=CHAIN)
    assert (s.done, s.failed) == (20, 0)
    assert tree(tmp_path) == tree(out)


# ---------------------------------------------------------------------------
# bad inputs
# ---------------------------------------------------------------------------


def make_bad_dir(root: Path) -> None:
    sf.write(root / "good.wav", tone(RATE // 2, 1).T, RATE, subtype="PCM_16")
    (root / "corrupt.mp4").write_bytes(np.random.default_rng(0).bytes(5000))
    # video only
    with av.open(str(root / "noaudio.mp4"), "w") as oc:
        vs = oc.add_stream("libx264", rate=10)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        for i in range(5):
            vf = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, 10)
            oc.mux(vs.encode(vf))
        oc.mux(vs.encode(None))
    sf.write(root / "empty.wav", np.zeros(0, np.float32), RATE)
    # a WAVE format tag FFmpeg has no decoder for
    sf.write(root / "unsupported.wav", tone(4800, 2).T, RATE, subtype="PCM_16")
    b = bytearray((root / "unsupported.wav").read_bytes())
    i = b.find(b"fmt ")
    b[i + 8: i + 10] = struct.pack("<H", 0x3333)
    (root / "unsupported.wav").write_bytes(bytes(b))
    (root / "sub").mkdir()
    sf.write(root / "sub" / "unwritable.wav", tone(4800, 3).T, RATE, subtype="PCM_16")


EXPECTED_FAILURES = {
    "corrupt.mp4": ("MediaError", "cannot open as a media file"),
    "noaudio.mp4": ("MediaError", "no audio stream (expected at least one; streams found: video)"),
    "empty.wav": ("FormatError", "is empty: expected at least 1 sample, got 0"),
    "unsupported.wav": ("MediaError", "has an unsupported codec"),
    "unwritable.wav": ("FileExistsError", "cannot write output"),
}


def test_bad_inputs_reported_batch_goes_on(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    make_bad_dir(src)
    out.mkdir()
    (out / "sub").write_bytes(b"")  # a file where the output folder must go: the write fails
    s = batch_clean(src, out, chain_options=CHAIN)
    assert (s.files, s.done, s.failed) == (6, 1, 5)
    got = {os.path.basename(r.input_path): r for r in s.failures}
    assert set(got) == set(EXPECTED_FAILURES)
    for name, (etype, text) in EXPECTED_FAILURES.items():
        r = got[name]
        assert r.error_type == etype and text in r.error, (name, r.error_type, r.error)
        assert r.input_path in r.error or r.output_path in r.error  # the message names the file
    # no partial outputs: only the good file (and the blocking file) in OUT
    assert sorted(tree(out)) == ["good.wav", "sub"]
    text = s.to_text()
    assert "6 file(s): 1 cleaned, 0 skipped (already done), 5 failed" in text
    assert text.count("FAILED") == 5


def test_bad_arguments(tmp_path):
    with pytest.raises(ParameterError, match="expected IN_DIR to be a directory"):
        batch_clean(tmp_path / "nope", tmp_path / "out")
    (tmp_path / "f").write_bytes(b"")
    with pytest.raises(ParameterError, match="expected OUT_DIR to be a directory"):
        batch_clean(tmp_path, tmp_path / "f")
    with pytest.raises(ParameterError, match="expected OUT_DIR to differ from IN_DIR"):
        batch_clean(tmp_path, tmp_path / ".." / tmp_path.name)
    with pytest.raises(ParameterError, match="expected an executor with submit"):
        batch_clean(tmp_path, tmp_path / "o", executor=object())


def test_cli_batch(tmp_path, capsys):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    make_bad_dir(src)
    code = main(["batch", str(src), str(out), "--denoise", "dsp", "--ext", ".flac", "--loudness", "-16",
                 "--summary-json", str(tmp_path / "s.json")])
    err = capsys.readouterr()
    assert code == 1  # some files failed
    assert "6 file(s): 2 cleaned, 0 skipped (already done), 4 failed" in err.out
    assert err.out.count("FAILED") == 4 and "failed corrupt.mp4" not in err.err
    assert sorted(tree(out)) == ["good.flac", "sub/unwritable.flac"]
    import json

    d = json.loads((tmp_path / "s.json").read_text())
    assert d["failed"] == 4 and d["done"] == 2 and d["files"] == 6
    from mediacore.stages.loudness import measure_loudness

    y, sr = read_audio(out / "good.flac")
    assert measure_loudness(y, sr).integrated_lufs == pytest.approx(-16.0, abs=0.3)
    # a rerun skips the finished file
    code = main(["batch", str(src), str(out), "--denoise", "dsp", "--ext", ".flac", "-q"])
    assert "2 skipped" in capsys.readouterr().out and code == 1


# ---------------------------------------------------------------------------
# dask.distributed: scheduler + 2 workers as separate processes on loopback
# ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    from distributed import Client  # the test extra installs mediacore[cluster]; no skip

    bindir = Path(sys.executable).parent
    dask = str(bindir / "dask") if (bindir / "dask").exists() else shutil.which("dask")
    assert dask, "the dask command (mediacore[cluster]) is not installed"
    port, dash = free_port(), free_port()
    addr = f"tcp://127.0.0.1:{port}"
    logdir = tmp_path_factory.mktemp("dask")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    procs = []

    def start(args, name):
        log = open(logdir / f"{name}.log", "wb")
        procs.append(subprocess.Popen([dask, *args], stdout=log, stderr=subprocess.STDOUT, env=env,
                                      cwd=str(logdir)))

    try:
        start(["scheduler", "--host", "127.0.0.1", "--port", str(port), "--dashboard-address",
               f"127.0.0.1:{dash}", "--no-show"], "scheduler")
        for k in range(2):
            start(["worker", addr, "--host", "127.0.0.1", "--nthreads", "1", "--nworkers", "1",
                   "--no-dashboard", "--name", f"w{k}", "--memory-limit", "0"], f"worker{k}")
        client = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                client = Client(addr, timeout=5)
                client.wait_for_workers(2, timeout=30)
                break
            except Exception:  # scheduler not up yet
                if client is not None:
                    client.close()
                    client = None
                time.sleep(0.5)
        assert client is not None, "dask cluster did not start: " + " | ".join(
            (logdir / f).read_text(errors="replace")[-500:] for f in os.listdir(logdir))
        yield client
        client.close()
    finally:
        for p in procs[::-1]:
            p.terminate()
        for p in procs[::-1]:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.mark.parametrize("how", ["client", "executor"])
def test_dask_cluster_matches_local(corpus, local_run, dask_cluster, tmp_path, how):
    root, total = corpus
    out, _ = local_run
    executor = dask_cluster if how == "client" else dask_cluster.get_executor()
    s = batch_clean(root, tmp_path, executor=executor, chain_options=CHAIN)
    assert (s.files, s.done, s.failed) == (20, 20, 0), s.to_text()
    assert s.audio_s == pytest.approx(total, abs=1e-6)
    # the work ran in the worker processes, both of them
    workers = {r.worker for r in s.results}
    assert len(workers) == 2 and all(w.split(":")[1] != str(os.getpid()) for w in workers)
    # every output byte-identical to the local run
    assert tree(tmp_path) == tree(out)


def test_dask_bad_inputs(dask_cluster, tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    make_bad_dir(src)
    s = batch_clean(src, out, executor=dask_cluster, chain_options=CHAIN)
    assert (s.done, s.failed) == (2, 4)  # the output folder is writable here
    assert {os.path.basename(r.input_path) for r in s.failures} == set(EXPECTED_FAILURES) - {"unwritable.wav"}


def test_cli_batch_process_pool_and_scheduler(corpus, local_run, dask_cluster, tmp_path, capsys):
    root, _ = corpus
    out, _ = local_run
    opts = ["--denoise", "dsp", "-q"]
    assert main(["batch", str(root), str(tmp_path / "pool"), "--jobs", "2", *opts]) == 0
    assert "20 file(s): 20 cleaned, 0 skipped (already done), 0 failed" in capsys.readouterr().out
    assert tree(tmp_path / "pool") == tree(out)
    address = dask_cluster.scheduler.address
    assert main(["batch", str(root), str(tmp_path / "dask"), "--scheduler", address, *opts]) == 0
    assert "20 file(s): 20 cleaned" in capsys.readouterr().out
    assert tree(tmp_path / "dask") == tree(out)
    assert main(["batch", str(root), str(tmp_path / "x"), "--jobs", "0"]) == 2
    assert "--jobs must be >= 1, got 0" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# one extension list; temporaries owned per process; interrupting a pool
# ---------------------------------------------------------------------------


def test_batch_takes_every_extension_clean_writes_back(tmp_path):
    """.aac, .aiff, .ts, .avi (and every other extension clean reads and writes back) are
    picked up: the one list, MEDIA_EXTENSIONS, is what both use."""
    from media_files import GENERATED, make_every_format

    from mediacore.batch import MEDIA_EXTENSIONS
    from mediacore.io import probe

    assert set(GENERATED) == set(MEDIA_EXTENSIONS)
    assert {".aac", ".aiff", ".ts", ".avi"} <= set(MEDIA_EXTENSIONS)
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    files = make_every_format(src, seconds=0.3)
    s = batch_clean(src, out, chain_options=CHAIN)
    assert (s.files, s.done, s.failed) == (len(MEDIA_EXTENSIONS), len(MEDIA_EXTENSIONS), 0), s.to_text()
    assert sorted(tree(out)) == sorted(p.name for p in files.values())
    for ext, p in files.items():
        a, b = probe(p).audio_streams[0], probe(out / p.name).audio_streams[0]
        assert (b.codec, b.sample_rate, b.channels) == (a.codec, a.sample_rate, a.channels), ext
        n_in, n_out = read_audio(p)[0].shape[1], read_audio(out / p.name)[0].shape[1]
        assert n_in <= n_out <= n_in + (1152 if ext == ".avi" else 0), (ext, n_in, n_out)


def _temp_name(stem: str, pid: int, host: str) -> str:
    return f".{stem}.{pid}@{host}.abc123.part.wav"


def test_stale_temporaries_only_of_processes_that_are_gone(tmp_path):
    """A rerun removes the temporaries of dead processes (and old-style unowned ones), never
    those of a process still writing, here or (until an hour old) on another host."""
    from mediacore.io.atomic import FOREIGN_STALE_S, _host, remove_stale_temporaries, temporary_owner

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    sf.write(src / "a.wav", tone(4800, 1).T, RATE, subtype="PCM_16")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        names = {
            "live": _temp_name("b", sleeper.pid, _host()),
            "mine": _temp_name("c", os.getpid(), _host()),
            "dead": _temp_name("d", dead_pid, _host()),
            "old_style": ".e.abc123.part.wav",
            "foreign_new": _temp_name("f", 12345, "otherhost"),
            "foreign_old": _temp_name("g", 12345, "otherhost"),
        }
        for name in names.values():
            (out / name).write_bytes(b"half")
        old = time.time() - FOREIGN_STALE_S - 60
        os.utime(out / names["foreign_old"], (old, old))
        assert temporary_owner(names["live"]) == (sleeper.pid, _host())
        s = batch_clean(src, out, chain_options=CHAIN)
        assert (s.done, s.failed) == (1, 0)
        left = sorted(tree(out))
        assert left == sorted(["a.wav", names["live"], names["mine"], names["foreign_new"]])
    finally:
        sleeper.kill()
        sleeper.wait()
    assert sorted(os.path.basename(p) for p in remove_stale_temporaries(str(out))) == [names["live"]]


def test_two_batches_into_one_folder_both_succeed(tmp_path):
    """A second batch started while the first is writing leaves the first one's temporary
    file alone (it used to delete it, failing the first batch's file)."""
    from mediacore.io import write_audio

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for i in range(3):
        write_audio(src / f"talk{i}.wav", tone(RATE * 40, i), RATE)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parent.parent / "src"),
                                                       os.environ.get("PYTHONPATH", "")]))
    first = subprocess.Popen([sys.executable, "-m", "mediacore", "batch", str(src), str(out), "--denoise", "dsp",
                              "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while not any(".part" in p.name for p in out.glob(".*")) and time.monotonic() < deadline:
            time.sleep(0.005)
        parts = [p.name for p in out.glob(".*.part.wav")]
        assert parts, "the first batch never started writing"
        s = batch_clean(src, out, chain_options=CHAIN, overwrite=True)  # starts by removing stale temporaries
        o, e = first.communicate(timeout=120)
    finally:
        first.kill()
    assert (s.done, s.failed) == (3, 0), s.to_text()
    assert first.returncode == 0, e
    assert "3 file(s): 3 cleaned, 0 skipped (already done), 0 failed" in o
    assert sorted(tree(out)) == ["talk0.wav", "talk1.wav", "talk2.wav"]
    for i in range(3):
        assert read_audio(out / f"talk{i}.wav")[0].shape == (1, RATE * 40)


def test_ctrl_c_on_batch_jobs_2_is_one_line_exit_130(tmp_path):
    """Ctrl-C in a terminal (SIGINT to the whole process group) on ``batch --jobs 2``: no
    worker traceback, one line, exit 130, no temporary or partial file left."""
    from mediacore.io import write_audio

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for i in range(4):
        write_audio(src / f"talk{i}.wav", tone(RATE * 40, i), RATE)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parent.parent / "src"),
                                                       os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-m", "mediacore", "batch", str(src), str(out), "--jobs", "2",
                             "--denoise", "dsp", "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while len(list(out.glob(".*.part.wav"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert len(list(out.glob(".*.part.wav"))) == 2, "the workers never started writing"
        os.killpg(proc.pid, signal.SIGINT)
        o, e = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130
    assert e == "\nmediacore batch: interrupted; no partial output left\n"
    assert o == ""
    assert [p.name for p in out.iterdir() if ".part" in p.name] == []
    for p in out.iterdir():  # a file a worker finished before the interrupt is complete
        assert read_audio(p)[0].shape == (1, RATE * 40)
