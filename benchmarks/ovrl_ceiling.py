"""What limits DNSMOS OVRL on the dev set: references, oracle masks and peers, per speaker group.

    python benchmarks/ovrl_ceiling.py --corpus ../shared/corpus/dev [--peers rnnoise,dfn3] [--model ONNX]

For the 48 noisy clips, at 16 kHz and time-aligned to the clean reference, prints DNSMOS SIG / BAK / OVRL
and PESQ-WB for:

- ``reference``: the clean reference itself (what a perfect restorer would score);
- ``oracle IRM``: the ideal ratio mask sqrt(S / (S + N)) from the true speech and noise, on the neural
  model's 40 bands (60 dB floor): the best a band-gain suppressor that restores the reference can do;
- ``oracle mask toward dfn3(reference)`` (when ``dfn3`` is among the peers): the same bands' mask toward
  DeepFilterNet3's output *of the clean reference* (its room tone and reverberation removed): the best a
  band-gain model trained on cleaned targets (``mediacore train --clean-targets``) can do;
- ``neural``: ``Denoise(backend="neural")`` (default floor, or ``--model``);
- each peer, and its *band projection*: the noisy input times the 40-band gains that map it to the peer's
  output, i.e. how much of the peer's score a band-gain model could reach by imitating it.

Groups: the dev speakers whose references are reverberant room recordings (``fillets``) and the others.
Also prints the output level in the clean reference's pauses (frames 50 dB under its loudest), where
suppressors differ most.

With ``--splice 250,500,1000`` it prints only a splice table instead: for the noisy clips at ``--splice-snr``
(default -5 dB, where the gap to the peers lies), DNSMOS of each peer, of neural, and of the two outputs joined
in the STFT at each frequency (neural below it and the peer above, and the reverse): which part of the
spectrum carries a peer's lead.

Then, per clean-only clip (the input *is* the reference), each system's OVRL, PESQ-WB and level change in
the reference's active frames (within 30 dB of its loudest): on the reverberant references it shows what
the peers' OVRL there is made of (removing the reverberation the reference contains) and what that costs
against the clean-only PESQ criterion.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np


def _frames_db(x: np.ndarray, hop: int = 160) -> np.ndarray:
    n = len(x) // hop * hop
    return 10 * np.log10(np.mean(x[:n].reshape(-1, hop).astype(np.float64) ** 2, axis=1) + 1e-12)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--peers", default="rnnoise,dfn3", help="comma list of peers (mediacore.bench.peers)")
    ap.add_argument("--model", default=None, help="neural model to score (default: the shipped one)")
    ap.add_argument("--group-prefix", default="fillets", help="speaker prefix of the reverberant group")
    ap.add_argument("--clean-only", action="store_true", help="only the clean-only table (~1 min)")
    ap.add_argument("--splice", default="", metavar="HZ,HZ", help="only the splice table, at these frequencies")
    ap.add_argument("--splice-snr", type=float, default=-5.0, help="input SNR of the clips the splice table uses")
    args = ap.parse_args(argv)

    from scipy.signal import istft, stft

    from mediacore.bench.corpus import load_audio
    from mediacore.bench.metrics import align, dnsmos, estimate_delay, pesq_wb, to_16k
    from mediacore.bench.peers import get_peer
    from mediacore.neural.bands import band_matrix
    from mediacore.stages.denoise import Denoise

    bands = band_matrix()  # (40, 161): the model's bands on a 320-point, 16 kHz STFT
    spec = lambda v: stft(v, 16000, nperseg=320, noverlap=160)[2]  # noqa: E731
    unspec = lambda s, n: istft(s, 16000, nperseg=320, noverlap=160)[1][:n].astype(np.float32)  # noqa: E731
    band_power = lambda s: bands @ (np.abs(s) ** 2)  # noqa: E731
    peers = [p for p in args.peers.split(",") if p]
    corpus = Path(args.corpus)
    rows = [r for r in csv.DictReader(open(corpus / "manifest.csv")) if r["kind"] == "noisy"]
    scores: dict[str, dict[str, list]] = {}
    pauses: dict[str, list[float]] = {}

    def add(name, group, y16, c16, pause):
        d = dnsmos(y16)
        scores.setdefault(name, {}).setdefault(group, []).append((d["SIG"], d["BAK"], d["OVRL"], pesq_wb(c16, y16)))
        if pause.any():
            pauses.setdefault(name, []).append(float(np.mean(_frames_db(y16)[: len(pause)][pause])))

    if args.splice:
        return splice_table(rows, corpus, peers, [float(f) for f in args.splice.split(",") if f], args.splice_snr,
                            args.model)
    for r in ([] if args.clean_only else rows):
        x, sr = load_audio(corpus / r["noisy"])
        c, _ = load_audio(corpus / r["clean"])
        x16, c16 = to_16k(x, sr), to_16k(c, sr)
        n = len(c16)
        group = args.group_prefix if r["speaker"].startswith(args.group_prefix) else "others"
        ec = _frames_db(c16)
        pause = ec < ec.max() - 50
        X, S, N = spec(x16), spec(c16), spec(x16 - c16)
        add("reference", group, c16, c16, pause)
        irm = np.sqrt(band_power(S) / (band_power(S) + band_power(N) + 1e-12))
        add("oracle IRM (40 bands)", group, unspec(X * (bands.T @ np.maximum(irm, 1e-3)), n), c16, pause)
        if "dfn3" in peers:
            t = get_peer("dfn3")(c.astype(np.float32))
            t16 = to_16k(align(t, estimate_delay(c, t, sr, 100.0), len(c)), sr)
            g = np.sqrt(np.clip(band_power(spec(t16)) / (band_power(X) + 1e-12), 0.0, 1.0))
            add("oracle mask toward dfn3(reference)", group, unspec(X * (bands.T @ np.maximum(g, 1e-3)), n), c16,
                pause)
        y = Denoise(sample_rate=sr, backend="neural", model_path=args.model).run(x)
        add("neural", group, to_16k(y, sr), c16, pause)
        for p in peers:
            y = get_peer(p)(x.astype(np.float32))
            y = align(y, estimate_delay(c, y, sr, 100.0), len(c))
            y16 = to_16k(y, sr)
            add(p, group, y16, c16, pause)
            g = np.sqrt(band_power(spec(y16)) / (band_power(X) + 1e-12))
            add(f"{p} band projection", group, unspec(X * (bands.T @ np.clip(g, 1e-3, 1.0)), n), c16, pause)

    if scores:
        print_scores(scores, pauses, args.group_prefix)
        print()
    print("clean-only clips: OVRL / PESQ-WB / level change in the reference's active frames (dB)")
    print("| clip | speaker | " + " | ".join(["neural", *peers]) + " |")
    print("|---|---|" + "---|" * (1 + len(peers)))
    means: dict[str, list] = {}
    for r in (r for r in csv.DictReader(open(corpus / "manifest.csv")) if r["kind"] == "clean-only"):
        x, sr = load_audio(corpus / r["noisy"])
        c16 = to_16k(load_audio(corpus / r["clean"])[0], sr)
        outs = {"neural": Denoise(sample_rate=sr, backend="neural", model_path=args.model).run(x)}
        for p in peers:
            y = get_peer(p)(x.astype(np.float32))
            outs[p] = align(y, estimate_delay(x, y, sr, 100.0), len(x))
        ec = _frames_db(c16)
        active = ec > ec.max() - 30
        cells = []
        for name, y in outs.items():
            y16 = to_16k(y, sr)[: len(c16)]
            ey = _frames_db(y16)[: len(active)]
            a = active[: len(ey)]
            row = (dnsmos(y16)["OVRL"], pesq_wb(c16, y16), float(np.mean(ey[a] - ec[: len(ey)][a])))
            means.setdefault(name, []).append(row)
            cells.append("%.2f / %.2f / %+.1f" % row)
        print(f"| {r['id']} | {r['speaker']} | " + " | ".join(cells) + " |")
    print("| mean | | " + " | ".join("%.2f / %.2f / %+.1f" % tuple(np.mean(v, axis=0)) for v in means.values()) + " |")
    return 0


def splice_table(rows, corpus, peers, freqs, snr_db, model) -> int:
    from scipy.signal import istft, stft

    from mediacore.bench.corpus import load_audio
    from mediacore.bench.metrics import align, dnsmos, estimate_delay, to_16k
    from mediacore.bench.peers import get_peer
    from mediacore.stages.denoise import Denoise

    chosen = [r for r in rows if float(r["snr_db"]) == snr_db]
    if not chosen:
        raise SystemExit(f"ovrl_ceiling: no noisy clip at {snr_db} dB SNR")
    spec = lambda v: stft(v, 16000, nperseg=320, noverlap=160)[2]  # noqa: E731
    bins = np.arange(161) * 50.0
    scores: dict[str, list] = {}
    for r in chosen:
        x, sr = load_audio(corpus / r["noisy"])
        c, _ = load_audio(corpus / r["clean"])
        y = Denoise(sample_rate=sr, backend="neural", model_path=model).run(x)
        ours = to_16k(align(y, estimate_delay(c, y, sr, 100.0), len(c)), sr)
        scores.setdefault("neural", []).append(dnsmos(ours))
        for p in peers:
            y = get_peer(p)(x.astype(np.float32))
            theirs = to_16k(align(y, estimate_delay(c, y, sr, 100.0), len(c)), sr)
            scores.setdefault(p, []).append(dnsmos(theirs))
            A, B = spec(ours), spec(theirs)
            for f in freqs:
                low = (bins < f)[:, None]
                for name, s in ((f"neural below {f:g} Hz + {p} above", np.where(low, A, B)),
                                (f"{p} below {f:g} Hz + neural above", np.where(low, B, A))):
                    joined = istft(s, 16000, nperseg=320, noverlap=160)[1][: len(ours)].astype(np.float32)
                    scores.setdefault(name, []).append(dnsmos(joined))
    print(f"{len(chosen)} noisy clips at {snr_db:g} dB SNR")
    print("| output | SIG | BAK | OVRL |")
    print("|---|---:|---:|---:|")
    for name, ds in scores.items():
        print(f"| {name} | " + " | ".join(f"{np.mean([d[k] for d in ds]):.2f}" for k in ("SIG", "BAK", "OVRL")) + " |")
    return 0


def print_scores(scores, pauses, group_prefix) -> None:
    groups = [group_prefix, "others"]
    counts = {g: len(scores["reference"].get(g, [])) for g in groups}
    print(f"clips: {counts}")
    print("| system | OVRL all | OVRL " + " | OVRL ".join(groups) + " | SIG | BAK | PESQ-WB | pause level dBFS |")
    print("|---|---:|" + "---:|" * len(groups) + "---:|---:|---:|---:|")
    for name, per in scores.items():
        allv = np.array([v for g in groups for v in per.get(g, [])])
        m = allv.mean(axis=0)
        by = " | ".join(f"{np.mean([v[2] for v in per.get(g, [])]):.2f}" for g in groups)
        print(f"| {name} | {m[2]:.2f} | {by} | {m[0]:.2f} | {m[1]:.2f} | {m[3]:.2f} | {np.mean(pauses[name]):.1f} |")


if __name__ == "__main__":
    raise SystemExit(main())
