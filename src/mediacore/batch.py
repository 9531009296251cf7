"""Batch cleanup of many media files, locally or on a cluster.

``batch_clean(in_dir, out_dir, executor=...)`` finds every media file under
*in_dir*, runs :func:`mediacore.io.clean_media` with the default chain on each
and writes the result to the same relative path under *out_dir*.

* **Any executor.**  ``executor`` is anything with ``submit(fn, *args)``
  returning a future with ``result()``: a ``concurrent.futures`` pool, a
  ``dask.distributed.Client`` or its ``get_executor()``.  The task function
  (:func:`clean_file`) and its argument (:class:`BatchTask`) are plain,
  picklable top-level objects, so the same code path runs in-process, in a
  process pool and on dask workers.  On a cluster every worker must see the
  same paths (a shared file system).
* **Resumable.**  Outputs are written atomically (temporary file, then
  rename), so an output that exists is finished: it is skipped unless
  ``overwrite=True``.  Temporary files left by a killed run are removed at
  the start; those of processes still writing (another batch into the same
  folder) are left alone (:func:`mediacore.io.atomic.is_stale_temporary`).
* **Interruptible.**  :func:`process_pool` is the local pool of the command
  line: Ctrl-C or SIGTERM stops every worker, and each removes its temporary
  file before it exits.
* **One bad file never stops the batch.**  Each file's error (missing,
  corrupt, no audio, empty audio, unsupported codec, failed write, a worker
  that died) becomes a :class:`FileResult` with ``status="failed"`` and the
  message; no partial output is left.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from mediacore.errors import MediaCoreError, ParameterError, Terminated
from mediacore.io._av import MEDIA_EXTENSIONS
from mediacore.io.atomic import remove_stale_temporaries

__all__ = ["MEDIA_EXTENSIONS", "BatchSummary", "BatchTask", "FileResult", "batch_clean", "clean_file", "find_media",
           "plan", "process_pool", "remove_stale_temporaries"]


@dataclass(frozen=True)
class BatchTask:
    """One file to clean (picklable; sent to the worker)."""

    input_path: str
    output_path: str
    chain_options: dict[str, Any] = field(default_factory=dict)
    audio_codec: str | None = None
    bitrate: int | str | None = None
    loudness_lufs: float | None = None
    true_peak_dbtp: float = -1.0


@dataclass(frozen=True)
class FileResult:
    """What happened to one file."""

    input_path: str
    output_path: str
    status: str  #: "done", "skipped" (output already there) or "failed"
    duration_s: float = 0.0  #: audio duration processed (0 unless done)
    wall_s: float = 0.0
    error: str | None = None  #: the error message (failed only)
    error_type: str | None = None  #: the exception class name (failed only)
    worker: str | None = None  #: host:pid that ran it


@dataclass(frozen=True)
class BatchSummary:
    """The result of :func:`batch_clean`."""

    in_dir: str
    out_dir: str
    results: tuple[FileResult, ...]
    wall_s: float

    @property
    def files(self) -> int:
        return len(self.results)

    def _count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def done(self) -> int:
        return self._count("done")

    @property
    def skipped(self) -> int:
        return self._count("skipped")

    @property
    def failed(self) -> int:
        return self._count("failed")

    @property
    def failures(self) -> tuple[FileResult, ...]:
        return tuple(r for r in self.results if r.status == "failed")

    @property
    def audio_s(self) -> float:
        """Seconds of audio cleaned in this run (skipped files not counted)."""
        return sum(r.duration_s for r in self.results)

    @property
    def audio_hours(self) -> float:
        return self.audio_s / 3600.0

    @property
    def speed_x(self) -> float:
        """Seconds of audio cleaned per wall-clock second (all workers together)."""
        return self.audio_s / self.wall_s if self.wall_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "in_dir": self.in_dir, "out_dir": self.out_dir, "files": self.files, "done": self.done,
            "skipped": self.skipped, "failed": self.failed, "audio_s": self.audio_s,
            "audio_hours": self.audio_hours, "wall_s": self.wall_s, "speed_x": self.speed_x,
            "results": [asdict(r) for r in self.results],
        }

    def to_text(self) -> str:
        lines = [
            f"{self.files} file(s): {self.done} cleaned, {self.skipped} skipped (already done), "
            f"{self.failed} failed",
            f"{self.audio_hours:.3f} h ({self.audio_s:.1f} s) of audio in {self.wall_s:.1f} s "
            f"({self.speed_x:.1f}x real time)",
        ]
        for r in self.failures:
            lines.append(f"  FAILED {r.input_path}: {r.error_type}: {r.error}")
        return "\n".join(lines)


# ---------------------------------------------------------------------------
# the task (runs on the worker)
# ---------------------------------------------------------------------------


def clean_file(task: BatchTask) -> FileResult:
    """Clean one file; never raises for a bad file (the error is in the result)."""
    global _busy
    import socket

    from mediacore.chain import default_chain
    from mediacore.io import clean_media

    t0 = time.perf_counter()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    opts = dict(task.chain_options)

    def make_pipeline(sr: int, ch: int) -> Any:
        return default_chain(sample_rate=sr, num_channels=ch, **opts)

    def failed(exc: BaseException, msg: str) -> FileResult:
        return FileResult(task.input_path, task.output_path, "failed", wall_s=time.perf_counter() - t0,
                          error=msg, error_type=type(exc).__name__, worker=worker)

    folder = os.path.dirname(task.output_path) or "."
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        return failed(exc, f"{task.output_path}: cannot write output: expected a writable folder {folder}, "
                           f"got: {exc}")
    _busy = True
    try:
        report = clean_media(task.input_path, task.output_path, make_pipeline, audio_codec=task.audio_codec,
                             bitrate=task.bitrate, loudness_lufs=task.loudness_lufs,
                             true_peak_dbtp=task.true_peak_dbtp)
    except Terminated:
        if _pool_worker:  # the temporary file is gone; the parent is stopping this worker
            os._exit(128 + signal.SIGTERM)
        raise
    except MediaCoreError as exc:  # messages name the file already
        return failed(exc, str(exc))
    except (OSError, ValueError, RuntimeError) as exc:
        return failed(exc, f"{task.input_path}: {exc}")
    except Exception as exc:  # a bug must not stop the batch either; keep the traceback
        return failed(exc, f"{task.input_path}: {exc}\n{traceback.format_exc(limit=6)}")
    finally:
        _busy = False
    return FileResult(task.input_path, task.output_path, "done", duration_s=report.duration_s,
                      wall_s=time.perf_counter() - t0, worker=worker)


# ---------------------------------------------------------------------------
# local worker processes
# ---------------------------------------------------------------------------

_pool_worker = False  # set in processes started by process_pool
_busy = False  # a clean_file call is running in this process


def _worker_init() -> None:
    """In each worker of :func:`process_pool`: Ctrl-C is the parent's to handle
    (it stops the workers); SIGTERM ends the worker, removing the temporary
    file of the file it is writing first."""
    global _pool_worker
    _pool_worker = True
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _worker_sigterm)


def _worker_sigterm(signum: int, frame: Any) -> None:
    if _busy:
        raise Terminated()  # unwinds clean_media (atomic_output removes its temporary), then exits
    os._exit(128 + signum)


class _SpawnPool(ProcessPoolExecutor):
    """Workers start with SIGINT ignored (set while submit may spawn one, and
    inherited through exec), so a Ctrl-C in the terminal never reaches a worker
    that is still starting up, before :func:`_worker_init` runs."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return super().submit(fn, *args, **kwargs)
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            return super().submit(fn, *args, **kwargs)
        finally:
            signal.signal(signal.SIGINT, old)


@contextmanager
def process_pool(jobs: int, *, stop_timeout_s: float = 30.0) -> Iterator[Any]:
    """A ``ProcessPoolExecutor`` of *jobs* spawned workers for :func:`batch_clean`.

    If the block is left by an exception (Ctrl-C, SIGTERM turned into
    :class:`~mediacore.errors.Terminated`, anything else), pending files are
    cancelled and every worker gets SIGTERM: the one writing a file removes
    its temporary first.  Workers are waited for (up to *stop_timeout_s*, then
    killed) before the exception propagates, so nothing is left behind and no
    worker prints a traceback."""
    import multiprocessing

    pool = _SpawnPool(jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init)
    try:
        yield pool
    except BaseException:
        procs = list((getattr(pool, "_processes", None) or {}).values())  # the executor's worker processes
        pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            if p.is_alive():
                p.terminate()
        deadline = time.monotonic() + stop_timeout_s
        for p in procs:
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join(5.0)
        raise
    pool.shutdown(wait=True)


# ---------------------------------------------------------------------------
# planning
# ---------------------------------------------------------------------------


def find_media(in_dir: str, *, extensions: Iterable[str] = MEDIA_EXTENSIONS,
               exclude: str | None = None) -> list[str]:
    """Media files under *in_dir* (recursive, sorted, hidden files and *exclude* left out)."""
    exts = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
    ex = os.path.realpath(exclude) if exclude else None
    found = []
    for root, dirs, files in os.walk(in_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and (ex is None or os.path.realpath(os.path.join(root, d)) != ex))
        for f in files:
            if not f.startswith(".") and os.path.splitext(f)[1].lower() in exts:
                found.append(os.path.join(root, f))
    return sorted(found)


def plan(in_dir: str, out_dir: str, *, out_ext: str | None = None,
         extensions: Iterable[str] = MEDIA_EXTENSIONS, **task_options: Any) -> list[BatchTask]:
    """One :class:`BatchTask` per media file, output at the same relative path
    (with *out_ext* as extension if given)."""
    if out_ext is not None and not out_ext.startswith("."):
        out_ext = f".{out_ext}"
    tasks = []
    for src in find_media(in_dir, extensions=extensions, exclude=out_dir):
        rel = os.path.relpath(src, in_dir)
        if out_ext:
            rel = os.path.splitext(rel)[0] + out_ext
        tasks.append(BatchTask(os.path.abspath(src), os.path.abspath(os.path.join(out_dir, rel)), **task_options))
    return tasks


# ---------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------


def _as_completed(futures: list[Any]) -> Iterator[Any]:
    """Futures as they finish: concurrent.futures and dask.distributed; else in order."""
    import concurrent.futures as cf

    if futures and all(isinstance(f, cf.Future) for f in futures):
        yield from cf.as_completed(futures)
        return
    if futures and type(futures[0]).__module__.startswith("distributed"):
        from distributed import as_completed

        yield from as_completed(futures)
        return
    yield from futures


def batch_clean(
    in_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    executor: Any = None,
    chain_options: dict[str, Any] | None = None,
    audio_codec: str | None = None,
    bitrate: int | str | None = None,
    loudness_lufs: float | None = None,
    true_peak_dbtp: float = -1.0,
    out_ext: str | None = None,
    overwrite: bool = False,
    extensions: Iterable[str] = MEDIA_EXTENSIONS,
    on_result: Callable[[FileResult], Any] | None = None,
) -> BatchSummary:
    """Clean every media file under *in_dir* into *out_dir* (same relative paths).

    Parameters
    ----------
    executor : optional
        ``None`` runs in this process.  Otherwise anything with
        ``submit(fn, *args)`` returning a future with ``result()``:
        ``concurrent.futures.ProcessPoolExecutor``, ``dask.distributed.Client``
        (or ``client.get_executor()``), a Ray or other pool with that shape.
    chain_options : dict
        Keyword arguments of :func:`mediacore.default_chain` (``denoise``,
        ``agc``, ``target_level_dbfs``, ...).
    audio_codec, bitrate, loudness_lufs, true_peak_dbtp
        As in :func:`mediacore.io.clean_media`.
    out_ext : str, optional
        Output extension (e.g. ``".flac"``); default: the input's.
    overwrite : bool
        Redo files whose output exists (default: skip them, which makes an
        interrupted batch resumable).
    on_result : callable, optional
        Called with each :class:`FileResult` as it arrives (progress).

    Returns a :class:`BatchSummary`; failures are in it, never raised.
    """
    t0 = time.perf_counter()
    src, dst = os.fspath(in_dir), os.fspath(out_dir)
    if not os.path.isdir(src):
        raise ParameterError(f"batch: expected IN_DIR to be a directory, got {src!r}")
    if os.path.exists(dst) and not os.path.isdir(dst):
        raise ParameterError(f"batch: expected OUT_DIR to be a directory, got the file {dst!r}")
    if os.path.realpath(src) == os.path.realpath(dst):
        raise ParameterError(f"batch: expected OUT_DIR to differ from IN_DIR, both are {src!r} "
                             f"(outputs would replace the inputs)")
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise ParameterError(f"batch: expected an executor with submit(fn, *args), got {type(executor).__name__}")
    os.makedirs(dst, exist_ok=True)
    remove_stale_temporaries(dst)
    tasks = plan(src, dst, out_ext=out_ext, extensions=extensions, chain_options=dict(chain_options or {}),
                 audio_codec=audio_codec, bitrate=bitrate, loudness_lufs=loudness_lufs,
                 true_peak_dbtp=true_peak_dbtp)
    if len({t.output_path for t in tasks}) != len(tasks):
        raise ParameterError("batch: two inputs map to the same output path (same name, different extension); "
                             "pass out_ext=None to keep each input's extension")
    results: dict[int, FileResult] = {}

    def record(i: int, r: FileResult) -> None:
        results[i] = r
        if on_result is not None:
            on_result(r)

    todo = []
    for i, t in enumerate(tasks):
        if not overwrite and os.path.isfile(t.output_path):
            record(i, FileResult(t.input_path, t.output_path, "skipped"))
        else:
            todo.append((i, t))
    if executor is None:
        for i, t in todo:
            record(i, clean_file(t))
    else:
        index_of = {}
        futures = []
        for i, t in todo:
            fut = executor.submit(clean_file, t)
            index_of[id(fut)] = (i, t)
            futures.append(fut)
        for fut in _as_completed(futures):
            i, t = index_of[id(fut)]
            try:
                r = fut.result()
            except Exception as exc:  # the worker died or the task could not be shipped
                r = FileResult(t.input_path, t.output_path, "failed", error=f"worker failed: {exc}",
                               error_type=type(exc).__name__)
            record(i, r)
    ordered = tuple(results[i] for i in range(len(tasks)))
    return BatchSummary(src, dst, ordered, time.perf_counter() - t0)
