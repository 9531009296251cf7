"""Does a dev-set result carry over? Neural Denoise against RNNoise on three sets built beside the dev set.

The neural model's inference settings (speech floor, maximum attenuation) were chosen on the dev set
(``../shared/corpus/dev``), so a lead measured there may be fitted to its speakers and noises.  This script
builds three sets of 48 mixtures (48 kHz, speech at -26 dBFS P.56 active level, 8 per input SNR from -5 to
20 dB) and scores each system on them:

- ``pool``: speakers and real noises the model trained on (``/work/train_pool``), in new mixtures;
- ``dev-speech``: each dev clip's clean speech + a pool noise at the clip's SNR.  The utterances are new to the
  model, the voices are not: the corpus leaves the dev clips' source files out of the pool, not their speakers
  (Allison, the Russian prompt voice and two Fish Fillets voices have other utterances in the pool);
- ``dev-noise``: the ``pool`` set's clean speech + each dev clip's noise (noisy - clean) at the clip's SNR.

Babble is never made of the target's own voice (``voices_in_noise``), as in the dev set.  The sets are
generated deterministically (seeds 2026 and 77) into ``--work`` as float32 WAV, one folder per
set with a ``manifest.csv``; ``dev-noise`` needs the ``pool`` set and builds it too.  Scores at 16 kHz
(``mediacore.bench.metrics``): DNSMOS SIG / BAK / OVRL, PESQ-WB (and SI-SDR in the JSON).  ``Stage.run()``
removes each stage's latency, so outputs are scored as they come.  Per set it prints the means, mean OVRL per
input SNR and paired differences (neural - neural-no-floor, neural - rnnoise, neural-no-floor - rnnoise) with
95% percentile-bootstrap intervals over clips (10000 resamples, seed 2026).

Full run (3 sets x 48 clips, ~25 min: ~30 s to build the sets, ~9 s to score a clip)::

    .venv/bin/python benchmarks/cross_sets.py --corpus ../shared/corpus/dev --pool /work/train_pool \\
        --work /tmp/cross_sets --json

Quick check (all three sets are still built in full, so the audio is the same; only 3 clips each are scored)::

    .venv/bin/python benchmarks/cross_sets.py --corpus ../shared/corpus/dev --pool /work/train_pool \\
        --work /tmp/cross_sets --clips 3

Systems (``--systems``, comma list): ``neural`` (``Denoise(backend="neural")`` defaults), ``neural-no-floor``
(``speech_floor_db=None``), ``rnnoise``, or any other registered Denoise backend name with its defaults.
``--model NAME=PATH`` (repeatable) adds a system ``NAME``: the neural backend's defaults with another ONNX
model, e.g. a training run's ``RUN/model.onnx``, to judge a candidate before it ships.
The unprocessed input is always scored as ``input``.  The corpus tools (P.56 level, noise segments) come
from ``<corpus>/../tools/corpuslib.py``.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import sys
import time
import zlib
from pathlib import Path

import numpy as np

SR = 48000
REPO = Path(__file__).resolve().parents[1]
SETS = ("pool", "dev-speech", "dev-noise")
SYSTEMS = {
    "neural": {"backend": "neural"},
    "neural-no-floor": {"backend": "neural", "speech_floor_db": None},
    "rnnoise": {"backend": "rnnoise"},
}
PAIRS = (("neural", "neural-no-floor"), ("neural", "rnnoise"), ("neural-no-floor", "rnnoise"))
METRICS = ("SIG", "BAK", "OVRL", "pesq_wb")
N_BOOT, BOOT_SEED = 10000, 2026

# "pool" set
POOL_SEED = 2026
POOL_LEN = 8 * SR
POOL_SNRS = [-5, 0, 5, 10, 15, 20]
POOL_PER_SNR = 8
# real noise categories of the pool (white/pink/brown/hum are synthetic and left out); music twice per SNR
POOL_CATS = ["music", "music", "crowd", "traffic", "industry", "nature", "construction", "babble"]
POOL_GROUPS = ["asterisk-allison", "asterisk-ivrvoice", "fillets", "fotaq", "hedgewars"]
MIN_UTT_S, MAX_UTT_S, MIN_UTT_ACT = 0.6, 7.0, 0.5  # utterances kept (pool index duration and activity)
MIN_CLIP_ACT, MIN_SPEECH_S = 0.45, 4.0  # clip accepted: P.56 activity and seconds of utterance in 8 s

# "dev-speech" set: pool noise drawn with seed 77, category by clip index (real noises, music once)
CROSS_SEED = 77
CROSS_CATS = ["music", "crowd", "traffic", "industry", "nature", "construction", "babble"]


# the dev manifest's speaker names for the pool's: babble that carries the target's voice is not used
DEV_TO_POOL_SPEAKER = {"allison-smith": "asterisk-allison", "ivrvoice-ru-f": "asterisk-ivrvoice-ru"}


def voices_in_noise(entry: dict) -> set[str]:
    """Pool speakers summed into a noise file (babble: "sum of A, B, C: files..."), else the empty set.

    As in the dev set, where each clip's babble is made of other voices, a mixture whose noise holds the
    target's own voice is left out: no single-channel suppressor can tell which of two takes of a voice to keep.
    """
    src = entry.get("source", "")
    if not src.startswith("sum of "):
        return set()
    return {v.strip() for v in src[len("sum of "):].split(":", 1)[0].split(",")}


def _read(path: Path) -> np.ndarray:
    """Mono float64 at 48 kHz (channels averaged)."""
    import soundfile as sf
    from scipy.signal import resample_poly

    x, sr = sf.read(str(path), dtype="float64", always_2d=True)
    x = x.mean(axis=1)
    return x if sr == SR else resample_poly(x, SR, sr)


def _write_set(out: Path, clips: list[dict], audio: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    import soundfile as sf

    (out / "clean").mkdir(parents=True, exist_ok=True)
    (out / "noisy").mkdir(parents=True, exist_ok=True)
    for c in clips:
        clean, mix = audio[c["id"]]
        sf.write(out / c["clean"], clean.astype(np.float32), SR, subtype="FLOAT")
        sf.write(out / c["noisy"], mix.astype(np.float32), SR, subtype="FLOAT")
    with open(out / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(clips[0]))
        w.writeheader()
        w.writerows(clips)


def _clip(cid: str, snr: int, category: str, speaker: str, **extra) -> dict:
    return dict(id=cid, snr_db=snr, noise_category=category, speaker=speaker, **extra,
                clean=f"clean/{cid}.wav", noisy=f"noisy/{cid}.wav")


def build_pool(pool: Path, out: Path, cl) -> list[dict]:
    """48 new mixtures of pool speech and pool real noise (the RNG order fixes the set: keep it)."""
    rng = np.random.default_rng(POOL_SEED)
    sidx = json.loads((pool / "speech/index.json").read_text())
    nidx = json.loads((pool / "noise/index.json").read_text())
    # speakers by group; utterances shuffled once per speaker (each utterance is used at most once)
    utts: dict[str, list[dict]] = {}
    for r in sidx:
        if MIN_UTT_S <= r["duration_s"] <= MAX_UTT_S and r["activity"] >= MIN_UTT_ACT:
            utts.setdefault(r["speaker"], []).append(r)
    for s in sorted(utts):
        utts[s] = [utts[s][i] for i in rng.permutation(len(utts[s]))]
    group_spk = {g: [s for s in sorted(utts) if s.startswith(g)] for g in POOL_GROUPS}
    for g in POOL_GROUPS:
        group_spk[g] = [group_spk[g][i] for i in rng.permutation(len(group_spk[g]))]
    noise_files: dict[str, list[dict]] = {}
    for r in nidx:
        noise_files.setdefault(r["category"], []).append(r)
    for c in noise_files:
        noise_files[c] = [noise_files[c][i] for i in rng.permutation(len(noise_files[c]))]
    noise_next = {c: 0 for c in noise_files}
    group_turn = {g: 0 for g in POOL_GROUPS}

    clips, audio = [], {}
    for si, snr in enumerate(POOL_SNRS):
        cats = [POOL_CATS[i] for i in rng.permutation(len(POOL_CATS))]
        for k in range(POOL_PER_SNR):
            i = si * POOL_PER_SNR + k
            cid = f"h{i:02d}"
            # per-clip generator: a clip's draws do not shift when another clip's speech is rejected
            crng = np.random.default_rng([POOL_SEED, zlib.crc32(cid.encode())])
            g = POOL_GROUPS[i % len(POOL_GROUPS)]
            spk = group_spk[g][group_turn[g] % len(group_spk[g])]
            group_turn[g] += 1
            # speech: utterances of one speaker laid end to end with pauses
            for _ in range(20):
                clean = np.zeros(POOL_LEN)
                pos = int(crng.uniform(0.2, 0.5) * SR)
                used, tries, speech_s = [], 0, 0.0
                while pos < POOL_LEN - int(0.6 * SR) and tries < 60 and utts[spk]:
                    tries += 1
                    j = int(crng.integers(min(len(utts[spk]), 40)))
                    x = _read(pool / utts[spk][j]["file"])
                    if pos + len(x) > POOL_LEN - int(0.15 * SR):
                        continue
                    clean[pos:pos + len(x)] = x
                    used.append(utts[spk].pop(j))
                    speech_s += len(x) / SR
                    pos += len(x) + int(crng.uniform(0.25, 0.7) * SR)
                lev, act = cl.p56_active_level(clean)
                if act >= MIN_CLIP_ACT and speech_s >= MIN_SPEECH_S:
                    break
                # rejected: put the utterances back at the end and try the next speaker of the group
                utts[spk].extend(used)
                spk = group_spk[g][group_turn[g] % len(group_spk[g])]
                group_turn[g] += 1
            else:
                raise RuntimeError(f"{cid}: no speech clip passed the activity check")
            clean = clean * 10 ** ((-26.0 - lev) / 20)
            # noise: next file of the category (without replacement while files last), a non-silent segment
            cat = cats[k]
            # the next file of the category that does not carry the target's own voice (babble)
            for _ in range(len(noise_files[cat])):
                nf = noise_files[cat][noise_next[cat] % len(noise_files[cat])]
                noise_next[cat] += 1
                if not voices_in_noise(nf) & {spk}:
                    break
            else:
                raise RuntimeError(f"{cid}: every {cat} file carries the voice of {spk}")
            seg, off, _ = cl.pick_segment(_read(pool / nf["file"]), POOL_LEN, crng)
            seg = seg - seg.mean()
            noise = seg * 10 ** ((-26.0 - snr - cl.mean_level(seg)) / 20)
            mix = clean + noise
            # one anti-clip gain on speech and noise
            gain = min(1.0, 0.99 / max(np.abs(clean).max(), np.abs(noise).max(), np.abs(mix).max()))
            audio[cid] = (clean * gain, mix * gain)
            clips.append(_clip(cid, snr, cat, spk, speech=";".join(u["file"] for u in used),
                               noise=nf["file"], noise_offset_s=round(off, 3)))
    _write_set(out, clips, audio)
    return clips


def _cross_mix(clean: np.ndarray, seg: np.ndarray, snr: float, cl) -> tuple[np.ndarray, np.ndarray]:
    """Speech to -26 dBFS active level, noise to the SNR under it, one anti-clip gain from the mixture peak."""
    lev, _ = cl.p56_active_level(clean)
    clean = clean * 10 ** ((-26.0 - lev) / 20)
    noise = seg * 10 ** ((-26.0 - snr - cl.mean_level(seg)) / 20)
    mix = clean + noise
    g = min(1.0, 0.99 / max(np.abs(mix).max(), 1e-9))
    return clean * g, mix * g


def _dev_clips(corpus: Path) -> list[dict]:
    return [r for r in csv.DictReader(open(corpus / "manifest.csv")) if r["kind"] == "noisy"]


def build_dev_speech(corpus: Path, pool: Path, out: Path, cl) -> list[dict]:
    """Each dev clip's clean speech + a random pool noise file of a real category at the clip's SNR."""
    rng = np.random.default_rng(CROSS_SEED)
    by_cat: dict[str, list[dict]] = {}
    for r in json.loads((pool / "noise/index.json").read_text()):
        by_cat.setdefault(r["category"], []).append(r)
    clips, audio = [], {}
    for i, r in enumerate(_dev_clips(corpus)):
        clean = _read(corpus / r["clean"])
        cat = CROSS_CATS[i % len(CROSS_CATS)]
        voice = DEV_TO_POOL_SPEAKER.get(r["speaker"], r["speaker"])
        files = [f for f in by_cat[cat] if voice not in voices_in_noise(f)]
        nf = files[rng.integers(len(files))]
        seg, _, _ = cl.pick_segment(_read(pool / nf["file"]), len(clean), rng)
        cid = f"b{i:02d}"
        audio[cid] = _cross_mix(clean, seg - seg.mean(), float(r["snr_db"]), cl)
        clips.append(_clip(cid, int(float(r["snr_db"])), cat, r["speaker"], noise=nf["file"]))
    _write_set(out, clips, audio)
    return clips


def build_dev_noise(corpus: Path, pool_set: Path, pool_clips: list[dict], out: Path, cl) -> list[dict]:
    """The pool set's clean speech (as written, float32) + each dev clip's noise, cut to the shorter length."""
    dev = _dev_clips(corpus)
    if len(dev) > len(pool_clips):
        sys.exit(f"cross_sets: dev-noise pairs dev clip i with pool clip i: {len(dev)} dev clips, "
                 f"{len(pool_clips)} pool clips")
    clips, audio = [], {}
    for i, (r, h) in enumerate(zip(dev, pool_clips)):
        clean = _read(pool_set / h["clean"])
        noise = _read(corpus / r["noisy"]) - _read(corpus / r["clean"])
        n = min(len(clean), len(noise))
        cid = f"c{i:02d}"
        audio[cid] = _cross_mix(clean[:n], noise[:n], float(r["snr_db"]), cl)
        clips.append(_clip(cid, int(float(r["snr_db"])), r["noise_category"], h["speaker"], noise=r["id"]))
    _write_set(out, clips, audio)
    return clips


def score_set(set_dir: Path, clips: list[dict], systems: list[str]) -> list[dict]:
    """Per clip: {system: {metric: value}} for the input and each system."""
    import soundfile as sf

    from mediacore.bench import metrics as M
    from mediacore.stages.denoise import Denoise

    out, t0 = [], time.time()
    for c in clips:
        x, _ = sf.read(set_dir / c["noisy"], dtype="float32")
        ref, _ = sf.read(set_dir / c["clean"], dtype="float32")
        ref16 = M.to_16k(ref, SR)
        # a fresh stage per clip: no state carried from one clip to the next
        outs = {"input": x} | {s: Denoise(sample_rate=SR, **SYSTEMS.get(s, {"backend": s})).run(x) for s in systems}
        scores = {}
        for name, y in outs.items():
            y16 = M.to_16k(y.astype(np.float64), SR)
            d = M.dnsmos(y16)
            scores[name] = dict(SIG=d["SIG"], BAK=d["BAK"], OVRL=d["OVRL"], pesq_wb=M.pesq_wb(ref16, y16),
                                si_sdr=M.si_sdr(ref16, y16))
        out.append({**{k: c[k] for k in ("id", "snr_db", "noise_category", "speaker")}, "scores": scores})
        print(f"  {c['id']} snr={c['snr_db']:>3} {c['noise_category']:12s} OVRL "
              + " ".join(f"{k}={v['OVRL']:.3f}" for k, v in scores.items()) + f"  [{time.time() - t0:.0f} s]",
              flush=True)
    return out


def report(name: str, scored: list[dict], systems: list[str]) -> None:
    from mediacore.bench.stats import paired_comparison

    rows = ["input", *systems]
    vec = lambda s, m, sel=scored: [c["scores"][s][m] for c in sel]  # noqa: E731
    print(f"\n== {name}: {len(scored)} clips ==\nmeans")
    print(f"{'system':18s}" + "".join(f"{m:>9s}" for m in ("SIG", "BAK", "OVRL", "PESQ-WB")))
    for s in rows:
        # PESQ is NaN on a silent output; such clips are left out of its mean
        print(f"{s:18s}" + "".join(f"{np.nanmean(vec(s, m)):9.3f}" for m in METRICS))

    for key, title, head in (("snr_db", "input SNR", "SNR (dB)"), ("noise_category", "noise category", "category")):
        print(f"\nmean OVRL per {title}")
        print(f"{head:14s}" + "".join(f"{s:>17s}" for s in rows) + f"{'n':>5s}")
        for value in sorted({c[key] for c in scored}):
            sel = [c for c in scored if c[key] == value]
            print(f"{value!s:14s}" + "".join(f"{np.mean(vec(s, 'OVRL', sel)):17.3f}" for s in rows) + f"{len(sel):5d}")

    pairs = [(a, b) for a, b in PAIRS if a in systems and b in systems]
    if not pairs:
        return
    print(f"\npaired differences: mean [95% bootstrap, {N_BOOT} resamples over clips]  clips a>b / a<b")
    for m in ("OVRL", "SIG", "BAK", "pesq_wb"):
        for a, b in pairs:
            r = paired_comparison(vec(a, m), vec(b, m), n_boot=N_BOOT, seed=BOOT_SEED)
            d = np.array(vec(a, m)) - np.array(vec(b, m))
            ci = "" if r["ci_low"] is None else f"[{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]"
            print(f"{m:8s} {a:15s} - {b:15s}: {r['mean_diff']:+.3f} {ci:17s} {(d > 0).sum()}/{(d < 0).sum()}"
                  f"  (n={r['n']})")


def parse_model_option(spec: str) -> tuple[str, str]:
    """``--model NAME=PATH`` -> (NAME, PATH); the file must exist and NAME must not shadow a named system."""
    name, sep, path = spec.partition("=")
    if not sep or not name or not path:
        raise ValueError(f"--model: expected NAME=PATH, got {spec!r}")
    if name in SYSTEMS or name == "input":
        raise ValueError(f"--model: name {name!r} is taken (named systems: input, {', '.join(SYSTEMS)})")
    if not Path(path).is_file():
        raise ValueError(f"--model {name}: no model file at {path}")
    return name, str(Path(path).resolve())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", required=True, help="the dev corpus (manifest.csv; tools in <corpus>/../tools)")
    ap.add_argument("--pool", default="/work/train_pool", help="the training pool (speech/ and noise/ indexes)")
    ap.add_argument("--work", required=True, help="folder for the generated sets and scores (not in the repo)")
    ap.add_argument("--sets", default=",".join(SETS), help=f"comma list of {', '.join(SETS)}")
    ap.add_argument("--clips", type=int, default=None, metavar="N", help="score only the first N clips per set")
    ap.add_argument("--systems", default=",".join(SYSTEMS), help="comma list: named systems or Denoise backends")
    ap.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                    help="add system NAME: the neural backend's defaults with the ONNX model at PATH (repeatable)")
    ap.add_argument("--json", action="store_true", help="write per-clip scores to <work>/scores_<set>.json")
    args = ap.parse_args(argv)

    corpus, pool, work = Path(args.corpus).resolve(), Path(args.pool).resolve(), Path(args.work).resolve()
    sets = [s for s in args.sets.split(",") if s]
    if bad := [s for s in sets if s not in SETS]:
        ap.error(f"unknown set(s) {', '.join(bad)}; choose from {', '.join(SETS)}")
    if work.is_relative_to(REPO):
        ap.error(f"--work {work} is inside the repository; generated audio belongs elsewhere")
    tools = corpus.parent / "tools" / "corpuslib.py"
    needed = {corpus / "manifest.csv": "dev corpus manifest (--corpus)", tools: "corpus tools (<corpus>/../tools)",
              pool / "speech/index.json": "training pool speech index (--pool)",
              pool / "noise/index.json": "training pool noise index (--pool)"}
    if missing := [f"{what}: {p}" for p, what in needed.items() if not p.is_file()]:
        sys.exit("cross_sets: missing\n  " + "\n  ".join(missing))

    importlib.import_module("mediacore.stages.denoise_peers")  # registers rnnoise and the other peers
    from mediacore.bench.metrics import set_num_threads
    from mediacore.stages.denoise import backend_names

    systems = [s for s in args.systems.split(",") if s]
    for spec in args.model:
        try:
            name, path = parse_model_option(spec)
        except ValueError as exc:
            ap.error(str(exc))
        SYSTEMS[name] = {"backend": "neural", "model_path": path}
        systems.append(name)
    if bad := [s for s in systems if s not in SYSTEMS and s not in backend_names()]:
        ap.error(f"unknown system(s) {', '.join(bad)}; named: {', '.join(SYSTEMS)}; "
                 f"backends: {', '.join(backend_names())}")
    set_num_threads(1)
    sys.path.insert(0, str(tools.parent))
    import corpuslib as cl

    built: dict[str, list[dict]] = {}
    for name in SETS:  # in this order: dev-noise takes the pool set's speech
        if name not in sets and not (name == "pool" and "dev-noise" in sets):
            continue
        t0 = time.time()
        if name == "pool":
            built[name] = build_pool(pool, work / name, cl)
        elif name == "dev-speech":
            built[name] = build_dev_speech(corpus, pool, work / name, cl)
        else:
            built[name] = build_dev_noise(corpus, work / "pool", built["pool"], work / name, cl)
        print(f"built {name}: {len(built[name])} clips in {work / name} ({time.time() - t0:.0f} s)", flush=True)

    for name in sets:
        print(f"\nscoring {name}", flush=True)
        scored = score_set(work / name, built[name][: args.clips], systems)
        report(name, scored, systems)
        if args.json:
            (work / f"scores_{name}.json").write_text(json.dumps(scored, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
