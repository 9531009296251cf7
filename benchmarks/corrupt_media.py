"""The damaged- and unusual-media corpus through ``mediacore clean``: every file ends
complete and correct, or refused with exit 1 naming the file, the expected and the found.

    nice -n 19 python benchmarks/corrupt_media.py [--dir DIR] [--subprocess] [--only NAME ...]

Prints one line per file and a table per outcome; exits 1 if any file fails.
(mediacore.io.faults builds the corpus and classifies outcomes; tests/test_faults.py runs a subset.)
"""

from __future__ import annotations

import argparse
import collections
import platform
import sys
import tempfile
import time
from pathlib import Path

import av

import mediacore
from mediacore.io import faults


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, help="where to make the corpus (default: a temporary folder)")
    ap.add_argument("--subprocess", action="store_true", help="run 'python -m mediacore clean' per file")
    ap.add_argument("--only", nargs="*", help="case names")
    a = ap.parse_args()
    print(f"mediacore {mediacore.__version__}, PyAV {av.__version__} (FFmpeg {av.ffmpeg_version_info}), "
          f"Python {platform.python_version()}, {platform.machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        d = a.dir or Path(tmp)
        t0 = time.perf_counter()
        results = faults.run_corpus(d, names=tuple(a.only) if a.only else None, subprocess_mode=a.subprocess,
                                    progress=True)
        wall = time.perf_counter() - t0
    kinds = collections.Counter(r.kind for r in results)
    by_group: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for r in results:
        group = ("cut" if "_cut" in r.case else "bit flip" if "_flip_" in r.case
                 else "special" if r.case in {"empty_file", "not_media"} or "zero" in r.case or "no_audio" in r.case
                 or "header_only" in r.case else "valid")
        by_group[group][r.kind] += 1
    print(f"\n{len(results)} files in {wall:.0f} s: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
    print("\n| files | n | complete | refused (exit 1) | FAIL |\n|---|---|---|---|---|")
    for g in ("valid", "cut", "bit flip", "special"):
        c = by_group.get(g, collections.Counter())
        print(f"| {g} | {sum(c.values())} | {c['complete']} | {c['refused']} | {c['FAIL']} |")
    fails = [r for r in results if r.kind == "FAIL"]
    for r in fails:
        print(f"FAIL {r.case}: {r.reason} (rc={r.rc}) {r.message[-400:]}")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
