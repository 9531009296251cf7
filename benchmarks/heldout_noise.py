"""Generalisation to unheard noise: dev scores per noise category for models trained with and without
some categories.

Train two seeded runs that differ only in ``--exclude-noise`` (the categories held out), then score both
on the dev set's noisy clips; the held-out categories are the ones the second model never heard:

    mediacore train --pool POOL --out RUN_ALL  --steps 4000 --seed 5 [recipe options]
    mediacore train --pool POOL --out RUN_EXCL --steps 4000 --seed 5 [same options] \\
        --exclude-noise traffic,industry,construction
    python benchmarks/heldout_noise.py --corpus ../shared/corpus/dev \\
        --model all=RUN_ALL/model.onnx --model excl=RUN_EXCL/model.onnx --heldout traffic,industry

Prints PESQ-WB, SI-SDR and DNSMOS OVRL (16 kHz, latency-compensated) per model for the held-out and the
seen categories, and the difference excl - all for each.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", required=True, help="dev set folder (manifest.csv with noise_category)")
    ap.add_argument("--model", action="append", required=True, metavar="NAME=ONNX")
    ap.add_argument("--heldout", required=True, help="comma list of noise categories held out of training")
    ap.add_argument("--max-attenuation", type=float, default=None)
    args = ap.parse_args(argv)

    from mediacore.bench.corpus import load_audio
    from mediacore.bench.metrics import dnsmos, pesq_wb, si_sdr, to_16k
    from mediacore.stages.denoise import Denoise

    corpus = Path(args.corpus)
    rows = [r for r in csv.DictReader(open(corpus / "manifest.csv")) if r["kind"] == "noisy"]
    heldout = set(args.heldout.split(","))
    models = dict(m.split("=", 1) for m in args.model)
    scores: dict[str, dict[str, list[tuple[float, float, float]]]] = {}
    for name, path in models.items():
        per = scores.setdefault(name, {"held-out": [], "seen": []})
        for r in rows:
            x, sr = load_audio(corpus / r["noisy"])
            c, _ = load_audio(corpus / r["clean"])
            y = Denoise(sample_rate=sr, backend="neural", model_path=path,
                        max_attenuation_db=args.max_attenuation).run(x)
            c16, y16 = to_16k(c, sr), to_16k(y, sr)
            group = "held-out" if r["noise_category"] in heldout else "seen"
            per[group].append((pesq_wb(c16, y16), si_sdr(c16, y16), dnsmos(y16)["OVRL"]))
    print(f"held-out categories: {sorted(heldout)}; clips: held-out {len(scores[name]['held-out'])}, "
          f"seen {len(scores[name]['seen'])}")
    print("| model | group | PESQ-WB | SI-SDR dB | OVRL |\n|---|---|---:|---:|---:|")
    means = {}
    for name, per in scores.items():
        for group, vals in per.items():
            m = np.mean(np.array(vals), axis=0)
            means[name, group] = m
            print(f"| {name} | {group} | {m[0]:.3f} | {m[1]:.2f} | {m[2]:.3f} |")
    names = list(models)
    if len(names) == 2:
        a, b = names
        for group in ("held-out", "seen"):
            d = means[b, group] - means[a, group]
            print(f"{b} - {a}, {group}: PESQ {d[0]:+.3f}, SI-SDR {d[1]:+.2f} dB, OVRL {d[2]:+.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
