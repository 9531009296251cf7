"""The ``mediacore`` command line: ``clean``, ``batch``, ``demo``, ``info``, ``bench``.

Exit codes: 0 success, 1 a media / format error (message on stderr, no
traceback), 2 a usage error (a bad option value or combination: checked
before any file is read or written; the message names the flag), 130
interrupted (Ctrl-C), 143 terminated (SIGTERM, handled like Ctrl-C: no
temporary or partial file is left).  No message carries an ``[Errno N]`` code.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from mediacore import __version__
from mediacore.chain import DENOISE_CHOICES, default_chain
from mediacore.errors import MediaCoreError, ParameterError, Terminated

PROG = "mediacore"

#: frame length for the demo's pause / activity analysis and segmental SNR
FRAME_S = 0.020
#: a frame of the clean reference this far below its loudest frame is a speech pause
PAUSE_BELOW_PEAK_DB = 40.0
#: segmental SNR per-frame clamp (the usual [-10, 35] dB)
SEG_SNR_RANGE = (-10.0, 35.0)


class _UsageError(Exception):
    """A bad combination of arguments found after parsing (exit code 2)."""


#: library parameter -> the flag that sets it, so that a usage error names what the user typed
FLAG_OF_PARAMETER = {
    "max_attenuation_db": "--max-attenuation",
    "target_level_dbfs": "--target-level",
    "model_path": "--model",
    "target_lufs": "--loudness",
    "loudness_lufs": "--loudness",
    "ceiling_dbtp": "--true-peak",
    "true_peak_dbtp": "--true-peak",
    "out_sample_rate": "--sample-rate",
    "fec_loss_percent": "--fec",
    "payload_type": "--payload-type",
    "max_wait_ms": "--max-wait-ms",
}
_PARAMETER_RE = re.compile(r"\b(" + "|".join(FLAG_OF_PARAMETER) + r")\b")
_ERRNO_RE = re.compile(r"\[Errno -?\d+\]\s*")


def _usage_error(exc: BaseException, flag: str | None = None) -> _UsageError:
    """A usage error from a library check's message: parameter names become the flags that set
    them; ``flag`` (the option whose value failed) leads the message unless it is named already."""
    text = _PARAMETER_RE.sub(lambda m: FLAG_OF_PARAMETER[m.group(1)], error_text(exc))
    if flag and flag not in text:
        text = f"argument {flag}: {text}"
    return _UsageError(text)


def error_text(exc: BaseException | str) -> str:
    """The message of an error as the command prints it: no ``[Errno N]`` codes (an FFmpeg error
    says its strerror and the file it was about)."""
    if isinstance(exc, str):
        return _ERRNO_RE.sub("", exc)
    text = str(exc)
    if isinstance(exc, OSError) or _is_ffmpeg_error(exc):
        strerror, filename = getattr(exc, "strerror", None), getattr(exc, "filename", None)
        if strerror and _ERRNO_RE.match(text):  # a bare OSError / FFmpeg error: "[Errno N] what: 'file'"
            text = f"{os.fspath(filename)}: {strerror}" if filename else str(strerror)
    return _ERRNO_RE.sub("", text)


def _is_ffmpeg_error(exc: BaseException) -> bool:
    av = sys.modules.get("av")  # an FFmpeg error can only come from an imported PyAV
    return av is not None and isinstance(exc, getattr(av, "FFmpegError", ()))


# ---------------------------------------------------------------------------
# argument parser
# ---------------------------------------------------------------------------


def _chain_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--denoise", choices=DENOISE_CHOICES, default=DENOISE_CHOICES[0],
                   help="noise suppressor ('none' leaves it out; default: %(default)s)")
    p.add_argument("--agc", action=argparse.BooleanOptionalAction, default=True,
                   help="automatic gain control toward --target-level (default: on)")
    p.add_argument("--max-attenuation", metavar="DB", type=float, default=None,
                   help="largest noise attenuation of the denoiser in dB (default: the backend's, "
                        "see mediacore.stages.denoise.BACKEND_MAX_ATTENUATION_DB; 25 for dsp)")
    p.add_argument("--no-highpass", dest="highpass", action="store_false",
                   help="leave out the 80 Hz high-pass filter")
    p.add_argument("--model", metavar="ONNX", dest="model_path",
                   help="neural denoiser model made by 'mediacore train' (RUN/model.onnx; default: the shipped one)")


def _chain_kwargs(args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    """default_chain keyword arguments from the options of _chain_options (+ ``extra``), checked by
    building a chain once, so a bad value is a usage error before any file is touched."""
    kwargs = dict(denoise=args.denoise, agc=args.agc, highpass=args.highpass,
                  max_attenuation_db=args.max_attenuation, **extra)
    if args.model_path:
        if args.denoise != "neural":
            raise _UsageError(f"--model is a neural denoiser model; --denoise is {args.denoise!r}")
        if not os.path.isfile(args.model_path):
            raise _UsageError(f"--model {args.model_path}: no such file")
        kwargs["model_path"] = args.model_path
    try:
        default_chain(sample_rate=48000, num_channels=1, **kwargs)
    except ParameterError as exc:
        raise _usage_error(exc) from None
    return kwargs


def _output_options(p: argparse.ArgumentParser) -> None:
    """Options of the commands that write cleaned files (clean, batch)."""
    p.add_argument("--target-level", metavar="DBFS", type=float, default=-23.0,
                   help="AGC target speech level in dBFS (default: %(default)s)")
    p.add_argument("--codec", metavar="NAME", help="audio encoder (default: from the extension / input codec)")
    p.add_argument("--bitrate", metavar="B", help="bitrate of lossy codecs, e.g. 128k")


def _loudness_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--loudness", metavar="LUFS", type=float,
                   help="normalise integrated loudness (ITU-R BS.1770) to LUFS, e.g. -16 or -23 (two passes)")
    p.add_argument("--true-peak", metavar="DBTP", type=float, default=None,
                   help=f"true-peak ceiling with --loudness (default: {DEFAULT_TRUE_PEAK_DBTP})")


#: --true-peak when --loudness is given without it
DEFAULT_TRUE_PEAK_DBTP = -1.0


def _output_kwargs(args: argparse.Namespace, out_path: str | None = None) -> dict[str, Any]:
    """clean_media / batch_clean keyword arguments of the output options, each checked up front by
    the library's own check (a bad value is a usage error naming its flag, before any file is read)."""
    from mediacore.io._av import output_format, parse_bitrate, resolve_codec
    from mediacore.stages.loudness import LoudnessNormalize

    checks = [("--codec", resolve_codec, args.codec), ("--bitrate", parse_bitrate, args.bitrate)]
    if out_path is not None:
        checks.append(("-o/--output" if args.command == "clean" else "--ext", output_format, out_path))
    for flag, check, value in checks:
        if value is not None:
            try:
                check(value)
            except ParameterError as exc:
                raise _usage_error(exc, flag) from None
    if args.loudness is None and args.true_peak is not None:
        raise _UsageError("argument --true-peak: the ceiling applies to loudness normalisation; give --loudness")
    true_peak = DEFAULT_TRUE_PEAK_DBTP if args.true_peak is None else args.true_peak
    if args.loudness is not None:
        try:  # the stage clean_media normalises with checks the same ranges
            LoudnessNormalize(sample_rate=48000, target_lufs=args.loudness, true_peak_dbtp=true_peak)
        except ParameterError as exc:
            raise _usage_error(exc) from None
    return dict(audio_codec=args.codec, bitrate=args.bitrate, loudness_lufs=args.loudness,
                true_peak_dbtp=true_peak)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Clean up speech recordings: high-pass, noise suppression, automatic gain control.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "clean", help="process the audio of a media file with the default chain",
        description="Run the default chain (high-pass -> denoise -> VAD -> AGC) over the audio of IN and write "
                    "OUT (format from its extension).  Video and other streams are copied untouched; the output "
                    "is written atomically and has exactly the input's length.")
    p.add_argument("input", metavar="IN", help="input media file (audio or video)")
    p.add_argument("-o", "--output", metavar="OUT", required=True, help="output file (must differ from IN)")
    _chain_options(p)
    _output_options(p)
    p.add_argument("--sample-rate", metavar="HZ", type=int, help="output sample rate (default: the input's)")
    _loudness_options(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no summary; errors only")
    p.set_defaults(func=_cmd_clean)

    p = sub.add_parser(
        "batch", help="clean every media file of a directory (resumable; local processes or a dask cluster)",
        description="Run the default chain over every media file under IN_DIR and write each result to the same "
                    "relative path under OUT_DIR.  Files whose output exists are skipped (outputs are written "
                    "atomically, so a rerun resumes an interrupted batch); a file that fails is reported and the "
                    "batch goes on.  Exit status 1 if any file failed.")
    p.add_argument("in_dir", metavar="IN_DIR", help="directory of input media files (searched recursively)")
    p.add_argument("out_dir", metavar="OUT_DIR", help="output directory (created if needed)")
    p.add_argument("-j", "--jobs", metavar="N", type=int, default=1,
                   help="worker processes on this machine (default: %(default)s)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on a dask.distributed cluster, e.g. tcp://10.0.0.5:8786 (needs mediacore[cluster]; "
                        "workers must see the same paths)")
    _chain_options(p)
    _output_options(p)
    p.add_argument("--ext", metavar="EXT", help="output extension, e.g. .flac (default: the input's)")
    _loudness_options(p)
    p.add_argument("--overwrite", action="store_true", help="redo files whose output exists")
    p.add_argument("--summary-json", metavar="PATH", help="also write the summary as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no per-file lines; summary only")
    p.set_defaults(func=_cmd_batch)

    p = sub.add_parser(
        "demo", help="run the default chain on the bundled noisy example and measure it",
        description="Process the bundled noisy speech example, write input.wav, output.wav, spectrogram.png "
                    "and numbers.json to DIR and print SI-SDR, segmental SNR, noise level in speech pauses and "
                    "speech level before and after (measured against the bundled clean reference).")
    p.add_argument("--out", metavar="DIR", default="mediacore-demo",
                   help="output directory (created if needed; default: ./%(default)s)")
    _chain_options(p)
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("info", help="show the streams of a media file",
                       description="Show container, duration and streams of FILE (without decoding it).")
    p.add_argument("file", metavar="FILE")
    p.set_defaults(func=_cmd_info)

    from mediacore.integrations.rtp.command import add_parser as add_relay_parser
    add_relay_parser(sub, _chain_options).set_defaults(func=_cmd_relay)

    p = sub.add_parser(
        "bench", help="benchmark noise suppressors on a corpus (quality, statistics, cost, report)",
        description="Run each system over every clip of a corpus at 48 kHz, measure and compensate its delay, "
                    "score it (PESQ, STOI, SI-SDR, DNSMOS at 16 kHz), compare systems pairwise, measure its cost "
                    "(RTF, per-10 ms-frame time) and write OUT/results.json, OUT/report.md and OUT/report.html. "
                    "Work is cached under OUT/cache, so a rerun only does what is missing.")
    p.add_argument("--corpus", metavar="DIR", required=True,
                   help="corpus: a directory with manifest.csv, VoiceBank-DEMAND (clean_testset_wav/, "
                        "noisy_testset_wav/), DNS-Challenge (noisy/, clean/) or a plain folder of noisy files")
    p.add_argument("--layout", choices=("auto", "manifest", "voicebank", "dns", "folder"), default="auto",
                   help="corpus layout (default: detected)")
    p.add_argument("--systems", metavar="LIST", default="noisy,dsp",
                   help="comma list: noisy, dsp, any Denoise backend (rnnoise, dfn3, webrtc, speex, noisereduce "
                        "when installed) (default: %(default)s)")
    p.add_argument("--external", metavar="NAME=DIR", action="append", default=[],
                   help="files processed elsewhere, named like the corpus' noisy files; aligned per clip "
                        "(rate, delay, level) (repeatable)")
    p.add_argument("--out", metavar="OUT", required=True, help="output directory (created if needed)")
    p.add_argument("--jobs", metavar="N", type=int, default=1, help="scoring processes (default: %(default)s)")
    p.add_argument("--clips", metavar="IDS", help="comma list of clip ids (default: all)")
    p.add_argument("--set", dest="overrides", metavar="KEY=VALUE", action="append", default=[],
                   help="keyword argument for default_chain (dsp) and Denoise backends; SYSTEM.KEY=VALUE for one "
                        "system only, e.g. webrtc.level=3; NAME.backend=B makes NAME a variant of backend B, e.g. "
                        "--systems neural,cand --set cand.backend=neural --set cand.model_path=run/model.onnx "
                        "(repeatable)")
    p.add_argument("--max-delay-ms", metavar="MS", type=float, default=100.0,
                   help="delay search range of internal systems (default: %(default)s)")
    p.add_argument("--external-max-delay-ms", metavar="MS", type=float, default=1000.0,
                   help="delay search range of external systems, per clip (default: %(default)s)")
    p.add_argument("--audio-clips", metavar="N", type=int, default=3,
                   help="clips with listening examples and spectrograms in the report (default: %(default)s)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_bench)

    # its options are the training recipe's own (main() hands the arguments over untouched)
    sub.add_parser("train", add_help=False,
                   help="train the neural denoiser on a speech + noise pool (needs mediacore[train]); "
                        "see 'mediacore train --help'")
    return parser


# ---------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (never raises SystemExit)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:
        return _cmd_train(argv[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return _exit_code(exc.code)
    sub_prog = f"{PROG} {args.command}"
    try:
        with _sigterm_as_interrupt():
            return int(args.func(args) or 0)
    except _UsageError as exc:
        _print_usage(parser, args.command)
        print(f"{sub_prog}: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        if not isinstance(exc, (MediaCoreError, OSError)) and not _is_ffmpeg_error(exc):
            raise  # a bug: its traceback is wanted
        print(f"{sub_prog}: error: {error_text(exc)}", file=sys.stderr)
        return 1
    except Terminated:
        print(f"\n{sub_prog}: terminated (SIGTERM); no partial output left", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print(f"\n{sub_prog}: interrupted; no partial output left", file=sys.stderr)
        return 130


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated()


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While a command runs, SIGTERM raises :class:`~mediacore.errors.Terminated`
    (a KeyboardInterrupt) in the main thread, so it unwinds like Ctrl-C; the
    previous handler comes back afterwards (main() also runs inside tests)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _cmd_train(argv: list[str]) -> int:
    try:
        from mediacore.train.recipe import train
    except ImportError as exc:
        print(f"{PROG} train: error: training needs torch and onnx ({exc.name} is missing): "
              "pip install 'mediacore[train]'", file=sys.stderr)
        return 1
    try:
        return int(train(argv, prog=f"{PROG} train") or 0)
    except SystemExit as exc:  # --help and usage errors of the recipe's parser
        return _exit_code(exc.code)
    except KeyboardInterrupt:
        print(f"\n{PROG} train: interrupted (resume with --resume)", file=sys.stderr)
        return 130


def _exit_code(code: Any) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _print_usage(parser: argparse.ArgumentParser, command: str) -> None:
    """Print the usage line of a subcommand on stderr (as argparse does for its own errors)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            action.choices[command].print_usage(sys.stderr)
            return


# ---------------------------------------------------------------------------
# clean
# ---------------------------------------------------------------------------


def _cmd_clean(args: argparse.Namespace) -> int:
    from mediacore.io import clean_media

    if _same_file(args.input, args.output):
        raise _UsageError(f"OUT must differ from IN (both are {args.output})")
    options = _chain_kwargs(args, target_level_dbfs=args.target_level)
    output = _output_kwargs(args, args.output)

    def make_pipeline(sr: int, ch: int):
        return default_chain(sample_rate=sr, num_channels=ch, **options)

    try:
        report = clean_media(args.input, args.output, make_pipeline, out_sample_rate=args.sample_rate,
                             progress=not args.quiet, **output)
    except ParameterError as exc:
        # clean_media's ParameterErrors are about its arguments (--sample-rate, a --codec or a
        # stream OUT's container cannot hold): usage errors; no output was written
        raise _usage_error(exc) from None
    if not args.quiet:
        extra = ""
        if report.video_streams_copied or report.other_streams_copied:
            extra = f", copied {report.video_streams_copied} video + {report.other_streams_copied} other stream(s)"
        if report.chapters_dropped:
            extra += f", {report.chapters_dropped} chapter(s) dropped (the output container cannot hold them)"
        print(f"cleaned {report.duration_s:.2f} s of audio ({report.sample_rate} Hz, {report.channels} ch, "
              f"{report.audio_codec}{extra}) in {report.wall_time_s:.2f} s "
              f"({report.realtime_factor:.1f}x realtime) -> {report.output_path}")
    return 0


def _same_file(a: str, b: str) -> bool:
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


# ---------------------------------------------------------------------------
# batch
# ---------------------------------------------------------------------------


def _cmd_batch(args: argparse.Namespace) -> int:
    from mediacore.batch import batch_clean

    if args.jobs < 1:
        raise _UsageError(f"--jobs must be >= 1, got {args.jobs}")
    chain_options = _chain_kwargs(args, target_level_dbfs=args.target_level)
    output = _output_kwargs(args, None if args.ext is None else f"OUT_DIR/*{args.ext}")

    def on_result(r: Any) -> None:
        if not args.quiet and r.status != "skipped":
            what = f"{r.duration_s:.1f} s in {r.wall_s:.1f} s" if r.status == "done" else f"{r.error_type}: {r.error}"
            print(error_text(f"{r.status:6s} {r.input_path} ({what})"), file=sys.stderr, flush=True)

    options = dict(chain_options=chain_options, out_ext=args.ext, overwrite=args.overwrite, on_result=on_result,
                   **output)
    try:  # batch_clean raises ParameterError for its arguments (IN_DIR, OUT_DIR) only; file errors are results
        summary = _run_batch(args, batch_clean, options)
    except ParameterError as exc:
        raise _usage_error(exc) from None
    print(error_text(summary.to_text()))
    if args.summary_json:
        from mediacore.io import atomic_output

        with atomic_output(args.summary_json) as tmp, open(tmp, "w", encoding="utf-8") as fh:
            json.dump(summary.to_dict(), fh, indent=2)
            fh.write("\n")
    return 1 if summary.failed else 0


def _run_batch(args: argparse.Namespace, batch_clean: Any, options: dict[str, Any]) -> Any:
    """batch_clean on the executor the options ask for (this process, --jobs processes, --scheduler)."""
    if args.scheduler:
        try:
            from distributed import Client
        except ImportError:
            from mediacore.errors import MissingDependencyError

            raise MissingDependencyError("--scheduler needs dask.distributed: pip install 'mediacore[cluster]'") from None
        with Client(args.scheduler) as client:
            return batch_clean(args.in_dir, args.out_dir, executor=client, **options)
    if args.jobs > 1:
        from mediacore.batch import process_pool

        # spawned workers (numba / onnxruntime threads here must not be forked); on Ctrl-C or SIGTERM every
        # worker removes its temporary file and exits without a traceback
        with process_pool(args.jobs) as pool:
            return batch_clean(args.in_dir, args.out_dir, executor=pool, **options)
    return batch_clean(args.in_dir, args.out_dir, **options)


# ---------------------------------------------------------------------------
# info
# ---------------------------------------------------------------------------


def _cmd_relay(args: argparse.Namespace) -> int:
    from mediacore.integrations.rtp.command import run

    try:
        return run(args)
    except ParameterError as exc:  # the relay's settings come from its options
        raise _usage_error(exc) from None


def _cmd_info(args: argparse.Namespace) -> int:
    from mediacore.io import probe

    info = probe(args.file)
    print(info.path)
    print(f"  container:  {info.container}")
    print(f"  duration:   {_fmt_s(info.duration_s)}")
    print(f"  bitrate:    {_fmt_bitrate(info.bitrate)}")
    if not info.audio_streams:
        print("  audio:      none")
    for a in info.audio_streams:
        lang = f", language {a.language}" if a.language else ""
        layout = f"{a.channels} ch" if a.layout in ("", f"{a.channels} channels") else f"{a.layout} ({a.channels} ch)"
        print(f"  audio #{a.index}:   {a.codec}, {a.sample_rate} Hz, {layout}, "
              f"{a.sample_format or '?'}, {_fmt_bitrate(a.bitrate)}, {_fmt_s(a.duration_s)}{lang}")
    print(f"  video:      {', '.join(info.video_codecs) if info.has_video else 'none'}")
    if info.subtitle_streams or info.data_streams:
        print(f"  subtitles:  {info.subtitle_streams}, data streams: {info.data_streams}")
    for k, v in info.metadata:
        print(f"  {k}: {v}")
    return 0


# ---------------------------------------------------------------------------
# bench
# ---------------------------------------------------------------------------


def _cmd_bench(args: argparse.Namespace) -> int:
    from mediacore.bench.report import build_tables
    from mediacore.bench.runner import run_bench
    from mediacore.bench.systems import parse_externals, parse_overrides

    if args.jobs < 1:
        raise _UsageError(f"--jobs must be >= 1, got {args.jobs}")
    try:
        externals = parse_externals(args.external)
        overrides = parse_overrides(args.overrides)
    except ParameterError as exc:
        raise _UsageError(str(exc)) from None
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    clips = [c.strip() for c in args.clips.split(",") if c.strip()] if args.clips else None
    log = (lambda msg: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    results = run_bench(args.corpus, systems, args.out, externals=externals, overrides=overrides, jobs=args.jobs,
                        clips=clips, layout=args.layout, max_delay_ms=args.max_delay_ms,
                        external_max_delay_ms=args.external_max_delay_ms, audio_clips=args.audio_clips,
                        progress=not args.quiet, log=log)
    from mediacore.bench.runner import jsonable

    table = build_tables(jsonable(results))[0]
    print("| " + " | ".join(table["header"]) + " |")
    for row in table["rows"]:
        print("| " + " | ".join(row) + " |")
    print(f"wall time {results['wall_s']:.1f} s; results in {os.path.join(args.out, 'results.json')}, "
          f"report in {os.path.join(args.out, 'report.html')}")
    return 0


def _fmt_s(s: float | None) -> str:
    return "unknown" if s is None else f"{s:.3f} s"


def _fmt_bitrate(b: int | None) -> str:
    return "unknown" if not b else f"{b / 1000:.0f} kb/s"


# ---------------------------------------------------------------------------
# demo
# ---------------------------------------------------------------------------


def _asset(name: str) -> Any:
    from importlib.resources import files

    return files("mediacore") / "_assets" / name


def attribution_line() -> str:
    """The licence / credit sentence of the bundled example (last paragraph of ATTRIBUTION.md)."""
    text = _asset("ATTRIBUTION.md").read_text(encoding="utf-8")
    paragraphs = [" ".join(p.split()) for p in text.strip().split("\n\n")]
    return paragraphs[-1] if paragraphs else ""


def _frames(x: np.ndarray, n: int) -> np.ndarray:
    k = x.size // n
    return x[: k * n].reshape(k, n).astype(np.float64)


def _level(frames: np.ndarray) -> float:
    from mediacore.bench.metrics import level_dbfs

    return level_dbfs(frames.ravel()) if frames.size else float("nan")


def segmental_snr(ref: np.ndarray, est: np.ndarray, frame: int, active: np.ndarray) -> float:
    """Mean per-frame SNR (clamped to [-10, 35] dB) over the ``active`` frames of ``ref``,
    after one least-squares gain on ``est`` (a global level change is not an error)."""
    ref = ref.astype(np.float64)
    est = est.astype(np.float64)
    ee = float(np.dot(est, est))
    if ee > 0:
        est = est * (float(np.dot(est, ref)) / ee)
    r, e = _frames(ref, frame)[active], _frames(est, frame)[active]
    if not r.size:
        return float("nan")
    num = np.sum(r * r, axis=1)
    den = np.sum((r - e) ** 2, axis=1)
    tiny = np.finfo(np.float64).tiny
    snr = 10.0 * np.log10((num + tiny) / (den + tiny))
    return float(np.mean(np.clip(snr, *SEG_SNR_RANGE)))


def measure(clean: np.ndarray, noisy: np.ndarray, out: np.ndarray, sr: int) -> dict[str, Any]:
    """The demo's numbers; all 1-D, same length, aligned sample for sample, scored against ``clean``."""
    from mediacore.bench.metrics import si_sdr

    n = int(round(FRAME_S * sr))
    fc = _frames(clean, n)
    energy_db = 10.0 * np.log10(np.mean(fc * fc, axis=1) + 1e-20)
    pause = energy_db < energy_db.max() - PAUSE_BELOW_PEAK_DB
    active = ~pause
    fx, fy = _frames(noisy, n), _frames(out, n)
    res = {
        "si_sdr_in_db": si_sdr(clean, noisy),
        "si_sdr_out_db": si_sdr(clean, out),
        "seg_snr_in_db": segmental_snr(clean, noisy, n, active),
        "seg_snr_out_db": segmental_snr(clean, out, n, active),
        "pause_noise_in_dbfs": _level(fx[pause]),
        "pause_noise_out_dbfs": _level(fy[pause]),
        "speech_level_in_dbfs": _level(fx[active]),
        "speech_level_out_dbfs": _level(fy[active]),
        "clean_speech_level_dbfs": _level(fc[active]),
        "pause_frames": int(pause.sum()),
        "active_frames": int(active.sum()),
    }
    res["noise_reduction_db"] = res["pause_noise_in_dbfs"] - res["pause_noise_out_dbfs"]
    return res


def _cmd_demo(args: argparse.Namespace) -> int:
    from mediacore.io import atomic_output, read_audio, write_audio

    noisy, sr = read_audio(_asset("example_noisy.flac"))
    clean, sr_c = read_audio(_asset("example_clean.flac"))
    if sr_c != sr or clean.shape != noisy.shape:
        raise MediaCoreError(f"bundled example: clean reference {clean.shape} at {sr_c} Hz does not match "
                             f"the noisy input {noisy.shape} at {sr} Hz")
    chain_opts = _chain_kwargs(args)
    os.makedirs(args.out, exist_ok=True)

    # warm up (JIT caches) on half a second, then time the real run
    default_chain(sample_rate=sr, num_channels=1, **chain_opts).run(noisy[:, : sr // 2])
    chain = default_chain(sample_rate=sr, num_channels=1, **chain_opts)
    t0 = time.perf_counter()
    out = chain.run(noisy)  # latency removed: aligned with the input sample for sample
    wall = time.perf_counter() - t0
    duration = noisy.shape[1] / sr

    m = measure(clean[0], noisy[0], out[0], sr)

    paths = {k: os.path.join(args.out, f) for k, f in
             (("input", "input.wav"), ("output", "output.wav"), ("spectrogram", "spectrogram.png"),
              ("numbers", "numbers.json"))}
    write_audio(paths["input"], noisy, sr)
    write_audio(paths["output"], out, sr)

    stage_names = " -> ".join(type(st).__name__ for st in chain.stages)
    numbers = {
        "input": "bundled example_noisy.flac",
        "sample_rate": sr,
        "duration_s": duration,
        "chain": stage_names,
        "denoise": args.denoise,
        "agc": args.agc,
        **{k: _round(v) for k, v in m.items()},
        "processing_time_s": _round(wall, 4),
        "realtime_factor": _round(duration / wall if wall > 0 else float("inf"), 1),
        "method": {
            "alignment": "Pipeline.run removes the chain latency; output sample k lines up with input sample k",
            "si_sdr": "noisy and output, each against the bundled clean reference",
            "seg_snr": f"mean of per-frame SNR over {FRAME_S * 1000:.0f} ms speech frames, clamped to "
                       f"{list(SEG_SNR_RANGE)} dB, after one least-squares gain on the signal",
            "pauses": f"{FRAME_S * 1000:.0f} ms frames of the clean reference more than "
                      f"{PAUSE_BELOW_PEAK_DB:.0f} dB below its loudest frame; the other frames are speech",
            "levels": "mean power in dBFS over the pause / speech frames",
        },
        "attribution": attribution_line(),
    }
    with atomic_output(paths["numbers"]) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(numbers, fh, indent=2, allow_nan=True)
            fh.write("\n")
    with atomic_output(paths["spectrogram"]) as tmp:
        _spectrogram_png(tmp, noisy[0], out[0], sr, numbers)

    print(f"mediacore demo: {duration:.2f} s of noisy speech at {sr} Hz through {stage_names}")
    print(f"  {'':24s}{'input':>9s}{'output':>9s}")
    rows = [("SI-SDR (dB)", "si_sdr_in_db", "si_sdr_out_db"),
            ("segmental SNR (dB)", "seg_snr_in_db", "seg_snr_out_db"),
            ("noise in pauses (dBFS)", "pause_noise_in_dbfs", "pause_noise_out_dbfs"),
            ("speech level (dBFS)", "speech_level_in_dbfs", "speech_level_out_dbfs")]
    for label, a, b in rows:
        print(f"  {label:24s}{m[a]:9.2f}{m[b]:9.2f}")
    print(f"  noise in speech pauses reduced by {m['noise_reduction_db']:.1f} dB; "
          f"clean speech level {m['clean_speech_level_dbfs']:.2f} dBFS")
    print(f"  processing: {wall * 1000:.0f} ms for {duration:.2f} s ({numbers['realtime_factor']:.0f}x realtime)")
    print(f"  wrote {', '.join(paths[k] for k in ('input', 'output', 'spectrogram', 'numbers'))}")
    print(f"  example audio: {numbers['attribution']}")
    return 0


def _round(v: Any, digits: int = 2) -> Any:
    if isinstance(v, float) and np.isfinite(v):
        return round(v, digits)
    return v


def _spectrogram_png(path: str, x: np.ndarray, y: np.ndarray, sr: int, numbers: dict[str, Any]) -> None:
    """Before/after spectrograms (rows), 0-8 kHz and full band (columns), one dB colour scale."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from scipy import signal

    nper = 1 << max(8, int(round(np.log2(sr * 0.0213))))  # ~21 ms (1024 at 48 kHz)
    specs = []
    for s in (x, y):
        f, t, p = signal.spectrogram(s.astype(np.float64), sr, window="hann", nperseg=nper,
                                     noverlap=nper * 3 // 4, scaling="spectrum", mode="psd")
        specs.append(10.0 * np.log10(p + 1e-16))
    vmax = float(np.ceil(max(s.max() for s in specs) / 10.0) * 10.0)
    vmin = vmax - 90.0

    fig = Figure(figsize=(13, 8), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    n = numbers
    titles = [
        f"Input (noisy): SI-SDR {n['si_sdr_in_db']:.1f} dB, segmental SNR {n['seg_snr_in_db']:.1f} dB, "
        f"noise in pauses {n['pause_noise_in_dbfs']:.1f} dBFS, speech {n['speech_level_in_dbfs']:.1f} dBFS",
        f"Output: SI-SDR {n['si_sdr_out_db']:.1f} dB, segmental SNR {n['seg_snr_out_db']:.1f} dB, "
        f"noise in pauses {n['pause_noise_out_dbfs']:.1f} dBFS ({-n['noise_reduction_db']:+.1f} dB), "
        f"speech {n['speech_level_out_dbfs']:.1f} dBFS",
    ]
    fig.suptitle(f"mediacore demo: {n['chain']} at {sr} Hz, {n['realtime_factor']:.0f}x realtime",
                 fontsize=12, fontweight="bold")
    rows = fig.subfigures(2, 1)
    im = None
    for row, spec in enumerate(specs):
        rows[row].suptitle(titles[row], fontsize=10)
        axes = rows[row].subplots(1, 2)
        for col, top in enumerate((min(8000.0, sr / 2), sr / 2)):
            ax = axes[col]
            im = ax.imshow(spec, origin="lower", aspect="auto", cmap="magma", vmin=vmin, vmax=vmax,
                           extent=(float(t[0]), float(t[-1]), float(f[0]) / 1000, float(f[-1]) / 1000),
                           interpolation="nearest")
            ax.set_ylim(0, top / 1000)
            ax.set_ylabel("kHz")
            ax.set_xlabel("time (s)")
            ax.set_title(f"0-{top / 1000:g} kHz" + (" (full band)" if col else ""), fontsize=9, loc="left")
        rows[row].colorbar(im, ax=axes, label="dB re full scale", shrink=0.95)
    fig.savefig(path, format="png")
