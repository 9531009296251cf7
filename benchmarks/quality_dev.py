"""Noise-suppression quality on the development corpus, the method of baseline.md.

Usage::

    python benchmarks/quality_dev.py --corpus /work/shared/corpus/dev \\
        --systems noisy,webrtc,dsp [--jobs 2] [--out results.json] [--clips n00,n01] \\
        [--set max_attenuation_db=30 ...] [--work DIR] [--save-audio DIR]

A thin wrapper over ``mediacore bench`` (:func:`mediacore.bench.runner.run_bench`,
where the method lives): it prints the two tables of baseline.md and writes
``results.json`` (keys documented in :mod:`mediacore.bench.runner`) to
``--out``.  ``--work DIR`` keeps the bench output directory (cache, report.md,
report.html) so a rerun only does missing work; without it a temporary
directory is used and removed.

Systems: any name ``mediacore bench`` resolves (:mod:`mediacore.bench.systems`):
``noisy``, ``dsp`` (``default_chain(denoise="dsp", agc=False)``), the Denoise
backends (``rnnoise``, ``dfn3``, ``webrtc``, ``speex``, ``noisereduce``, with
baseline.md's settings).  ``--set KEY=VALUE`` (or ``SYSTEM.KEY=VALUE``) is
passed to ``default_chain`` / ``Denoise``.

The "delay ms" column is each system's measured delay (median
cross-correlation lag over the speech clips), which is compensated before
scoring; for ``dsp`` that is its real-time latency (10 ms).
"""

from __future__ import annotations

import os

# One thread per process for the numeric libraries, so RTF is a one-thread
# figure and --jobs workers do not fight over the cores.  Set before numpy is
# imported; spawned workers inherit the environment.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

from mediacore.bench.environment import format_environment  # noqa: E402
from mediacore.bench.report import build_tables  # noqa: E402
from mediacore.bench.runner import jsonable, run_bench  # noqa: E402
from mediacore.bench.systems import known_systems, parse_overrides  # noqa: E402
from mediacore.errors import MediaCoreError  # noqa: E402


def render_tables(results: dict) -> str:
    """The quality table and the per-SNR table of baseline.md, as markdown."""
    tables = {t["title"]: t for t in build_tables(results)}
    lines = []
    main_t = tables["Quality (means over clips)"]
    lines += [main_t["note"], "", "| " + " | ".join(main_t["header"]) + " |",
              "|---|" + "---:|" * (len(main_t["header"]) - 1)]
    lines += ["| " + " | ".join(r) + " |" for r in main_t["rows"]]
    snr_t = next((t for title, t in tables.items() if title.startswith("Per input SNR")), None)
    if snr_t:
        lines += ["", snr_t["title"], "", "| " + " | ".join(snr_t["header"]) + " |",
                  "|---|" + "---:|" * (len(snr_t["header"]) - 1)]
        lines += ["| " + " | ".join(r) + " |" for r in snr_t["rows"]]
    lines += ["", "RTF = system time / audio time, one thread, one clip at a time, 10 ms frames. "
              "Means over clips; PESQ has no value on an all-silent output."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", required=True, help="corpus directory with manifest.csv")
    ap.add_argument("--systems", default="noisy,webrtc,dsp", help="comma list of systems")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes for scoring")
    ap.add_argument("--out", default="quality_dev_results.json", help="JSON results file")
    ap.add_argument("--clips", default=None, help="comma list of clip ids (default: all)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="extra keyword argument for default_chain / Denoise (repeatable)")
    ap.add_argument("--work", default=None, metavar="DIR",
                    help="keep the bench directory (cache, report.md/html) here; default: a temporary one")
    ap.add_argument("--save-audio", default=None, metavar="DIR",
                    help="also write the aligned 48 kHz outputs to DIR/SYSTEM/ID.flac")
    args = ap.parse_args(argv)

    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="quality_dev_"))
    try:
        systems = [s.strip() for s in args.systems.split(",") if s.strip()]
        overrides = parse_overrides(args.overrides)
        clips = [c.strip() for c in args.clips.split(",") if c.strip()] if args.clips else None
        results = run_bench(args.corpus, systems, work, overrides=overrides, jobs=args.jobs, clips=clips,
                            audio_clips=10**9 if args.save_audio else 0, report=bool(args.work),
                            progress=sys.stderr.isatty(), log=lambda m: print(m, file=sys.stderr, flush=True))
        results = jsonable(results)
        print(format_environment(results["environment"]))
        print(f"jobs: {args.jobs}; known systems: {', '.join(known_systems())}")
        if overrides:
            print(f"overrides: {overrides}")
        print()
        print(render_tables(results))
        for name, s in results["systems"].items():
            missing = sum(1 for r in s["clips"].values() if r["kind"] in ("noisy", "clean-only")
                          and r.get("pesq_wb") is None)
            if missing:
                print(f"note: {name}: PESQ undefined on {missing} clip(s) (silent output), left out of the mean")
            if s["delay"]["spread_ms"] > 1.0:
                print(f"note: {name}: per-clip lags spread over {s['delay']['spread_ms']:.1f} ms (> 1 ms); "
                      "the delay may not be constant")
        print(f"\nwall time: {results['wall_s']:.1f} s")
        if args.save_audio:
            import soundfile as sf

            for cid in results["audio"]:
                for name in results["systems"]:
                    wav = work / "audio" / cid / f"{name}.wav"
                    if name == "noisy":
                        wav = work / "audio" / cid / "noisy.wav"
                    dest = Path(args.save_audio) / name
                    dest.mkdir(parents=True, exist_ok=True)
                    x, sr = sf.read(str(wav), dtype="float32")
                    sf.write(str(dest / f"{cid}.flac"), x, sr, subtype="PCM_16")
        if args.out:
            out = Path(args.out)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(results, indent=1) + "\n")
            print(f"results written to {out}")
    except (MediaCoreError, ImportError, TypeError) as exc:  # TypeError: bad --set keyword
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
