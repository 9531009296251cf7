"""Training recipe for the neural denoiser (``python -m mediacore.train``).

Seeded; the full config (and the number of steps actually run) is written
next to the model, so ``--steps N`` with the same seed and pool repeats it.
Checkpoints every ``--checkpoint-s`` seconds (a stop loses nothing: ``--resume``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ..neural.bands import N_BANDS, N_MODEL_BINS
from .data import Mixer, Pool, parse_noise_weights
from .teacher import load_cleaned_sets
from .model import HOP, SR, BandGRU, Features, count_params, deep_filter, export_onnx, widen_state

DEFAULTS = dict(seed=1, hidden=96, layers=2, batch=32, seconds=2.0, lr=2e-3, lr_final=1e-4, weight_decay=1e-5,
                snr_lo=-5.0, snr_hi=25.0, eq_db=6.0, above_bw_weight=0.2, spec_weight=4.0, vad_weight=0.05,
                vad_threshold_db=-45.0, threads=1, max_minutes_per_speaker=20.0, stat_batches=8,
                asym_weight=0.0, p_reverb=0.0, exclude_noise="", exclude_speech="", noise_weights="", gate_db=0.0,
                teacher_frac=0.5, teacher_weight=1.0, teacher_max_snr=30.0, lookahead=0, fine_bins=0,
                rt60_lo=0.2, rt60_hi=0.9, rir_max_s=1.0, tail_lo=0.2, tail_hi=0.6, clean_targets="",
                p_clean=0.05, mixture_ratio=0, df_bins=0, df_taps=3, p_perturb=0.0, lead_in_s=0.0)


def _eq_curves(rng: torch.Generator, batch: int, n_bins: int, eq_db: float) -> torch.Tensor:
    """Random smooth EQ (+-eq_db at 6 control points, linear in frequency), (batch, 1, bins)."""
    pts = (torch.rand(batch, 1, 6, generator=rng) * 2 - 1) * eq_db
    curve = torch.nn.functional.interpolate(pts, size=n_bins, mode="linear", align_corners=True)
    return (10 ** (curve / 20))


def band_targets(feats, s_spec, n_spec, gate_db: float, mixture_ratio: bool = False):
    """(target band gains, target speech spectrum, speech band powers) of a mixture s + n.

    The target gain is the ideal ratio mask sqrt(S / (S + N)) per band; with ``mixture_ratio``,
    sqrt(S / X) of the mixture's own band power X (at most 1), which stays right when the "noise"
    is correlated with the target (a recording's room from cleaned targets, a late reverberation
    tail), where S + N would overstate the mixture and with it the gain.  With ``gate_db``
    > 0, recorded "clean" speech's own room tone and hiss between words count as noise:
    a band more than ``gate_db`` below its loudest frame in the example is dropped from
    the target, so the model learns to remove the recording's background as well.
    """
    es = feats.band_power(s_spec.real ** 2 + s_spec.imag ** 2)
    en = feats.band_power(n_spec.real ** 2 + n_spec.imag ** 2)
    es_target, s_target = es, s_spec
    if gate_db > 0:
        keep = (es >= es.amax(dim=1, keepdim=True) * 10 ** (-gate_db / 10)).float()
        es_target = es * keep
        s_target = s_spec * feats.to_bins(keep)
    if mixture_ratio:
        x_spec = s_spec + n_spec
        ex = feats.band_power(x_spec.real ** 2 + x_spec.imag ** 2)
        return torch.sqrt(es_target / (ex + 1e-12)).clamp(max=1.0), s_target, es
    return torch.sqrt(es_target / (es + en + 1e-12)), s_target, es


def teacher_targets(feats, x_spec, t_spec, target, s_target, alpha):
    """(band gains, compressed magnitude) targets moved toward a teacher's output by ``alpha`` (N,).

    The teacher's band gain is its output's band power over the mixture's (at most 1);
    the magnitude target blends in the same compressed (^0.3) domain as the spectral loss.
    """
    ex = feats.band_power(x_spec.real ** 2 + x_spec.imag ** 2)
    et = feats.band_power(t_spec.real ** 2 + t_spec.imag ** 2)
    a = alpha[:, None, None]
    gains = (1 - a) * target + a * torch.sqrt(et / (ex + 1e-12)).clamp(max=1.0)
    mag = (1 - a) * (s_target.abs() + 1e-9) ** 0.3 + a * (t_spec.abs() + 1e-9) ** 0.3
    return gains, mag


class TeacherSet:
    """Precomputed teacher examples (``python -m mediacore.train.teacher``): aligned random crops.

    ``paths``: one set, or several joined with commas (their examples pooled; same example length).
    """

    def __init__(self, paths: str, seed: int) -> None:
        sets = [np.load(p) for p in str(paths).split(",")]
        lengths = {z["speech"].shape[1] for z in sets}
        if len(lengths) > 1:
            raise ValueError(f"teacher sets {paths} have different example lengths {sorted(lengths)} (samples)")
        join = lambda key: np.concatenate([z[key] for z in sets])  # noqa: E731
        self.speech, self.noise, self.teacher, self.bandwidth = (join(k) for k in ("speech", "noise", "teacher",
                                                                                   "bandwidth"))
        metas = [json.loads(bytes(z["meta"]).decode()) for z in sets]
        self.meta = metas[0] if len(metas) == 1 else {"teacher": metas[0]["teacher"], "examples": len(self.speech),
                                                      "sets": metas}
        ps = (self.speech.astype(np.float64) ** 2).sum(1)
        pn = (self.noise.astype(np.float64) ** 2).sum(1) + 1e-20
        self.snr_db = 10 * np.log10(ps / pn + 1e-20)
        self.rng = np.random.default_rng(seed + 2000)
        self.skip = SR // 2  # the teacher's first half second (its state is still settling) is never used

    def batch(self, batch_size: int, n: int):
        if self.speech.shape[1] - self.skip < n:
            raise ValueError(f"teacher set examples are {self.speech.shape[1] / SR:.1f} s; "
                             f"need {(n + self.skip) / SR:.1f} s for --seconds")
        idx = self.rng.integers(0, len(self.speech), batch_size)
        start = self.rng.integers(self.skip, self.speech.shape[1] - n + 1, batch_size)
        crop = lambda a: np.stack([a[i, s: s + n] for i, s in zip(idx, start)])  # noqa: E731
        return crop(self.speech), crop(self.noise), crop(self.teacher), self.bandwidth[idx], self.snr_db[idx]


def _loss(model, feats, speech, noise, bw, h0, cfg, gen, teacher=None, alpha=None):
    """Training loss.  ``teacher`` (N, samples), ``alpha`` (N,): for rows with alpha > 0 the
    target (band gains and compressed magnitude) moves toward the teacher's output by alpha;
    those rows get no EQ (the teacher heard the mixture as it is)."""
    s_spec = feats.stft(speech)
    n_spec = feats.stft(noise)
    if cfg["eq_db"] > 0:
        keep = (alpha > 0)[:, None, None] if alpha is not None else None
        for_rows = lambda c: c if keep is None else torch.where(keep, torch.ones_like(c), c)  # noqa: E731
        s_spec = s_spec * for_rows(_eq_curves(gen, speech.shape[0], N_MODEL_BINS, cfg["eq_db"]))
        n_spec = n_spec * for_rows(_eq_curves(gen, speech.shape[0], N_MODEL_BINS, cfg["eq_db"]))
    x_spec = s_spec + n_spec
    gains, prob, _, *df = model(feats.inputs(x_spec, model.n_fine > 0), h0)
    df_term = deep_filter(x_spec, df[0], model.df_bins, model.df_taps) if model.df_bins else None
    la = cfg["lookahead"]
    if la:  # the output at frame t is for frame t - la: the model has heard la frames past it
        gains, prob = gains[:, la:], prob[:, la:]
        df_term = df_term[:, la:] if df_term is not None else None
        cut = lambda v: v[:, :-la]  # noqa: E731
        s_spec, n_spec, x_spec = cut(s_spec), cut(n_spec), cut(x_spec)
        if teacher is not None:
            teacher = teacher[:, : teacher.shape[1] - la * HOP]
    target, s_target, es = band_targets(feats, s_spec, n_spec, cfg["gate_db"], bool(cfg["mixture_ratio"]))
    if teacher is not None:
        target, s_mag = teacher_targets(feats, x_spec, feats.stft(teacher), target, s_target, alpha)
    else:
        s_mag = (s_target.abs() + 1e-9) ** 0.3
    # bins above the speech bandwidth: the target there is noise removal, but weight it low so the
    # model does not learn that speech never has a high band
    freqs = torch.arange(N_MODEL_BINS, dtype=torch.float32) * 50.0
    w_bins = torch.where(freqs[None, :] > bw[:, None], cfg["above_bw_weight"], 1.0)  # (N, K)
    w_bands = (w_bins @ feats.bands.T) / feats.bands.sum(1)  # (N, B)
    w_bands = w_bands[:, None, :]
    l_band = (w_bands * ((gains - target) ** 2 + (gains.sqrt() - target.sqrt()) ** 2)).mean()
    if cfg["asym_weight"] > 0:
        # a gain above the target lets noise through; residual noise is what listeners (and
        # DNSMOS BAK) punish most, so it costs more than the same error below the target
        l_band = l_band + cfg["asym_weight"] * (w_bands * torch.relu(gains - target) ** 2).mean()
    g_bins = feats.to_bins(gains)
    if df_term is None:
        y_mag = (g_bins * x_spec.abs() + 1e-9) ** 0.3
    else:  # the deep filter adds its term to the lowest bins (the band loss keeps the gains on their targets)
        k = model.df_bins
        y = torch.cat([g_bins[..., :k] * x_spec[..., :k] + df_term, g_bins[..., k:] * x_spec[..., k:]], dim=-1)
        y_mag = (y.real ** 2 + y.imag ** 2 + 1e-18) ** 0.15
    l_spec = (w_bins[:, None, :] * (y_mag - s_mag) ** 2).mean() * 10
    frame_db = 10 * torch.log10(es.sum(-1) + 1e-12)
    vad_t = (frame_db > cfg["vad_threshold_db"] + 10 * math.log10(1 / 320 ** 2 * 160)).float()
    l_vad = torch.nn.functional.binary_cross_entropy(prob.clamp(1e-6, 1 - 1e-6), vad_t)
    return l_band + cfg["spec_weight"] * l_spec / 4 + cfg["vad_weight"] * l_vad, (l_band.item(), l_spec.item(),
                                                                                     l_vad.item())


def train(argv=None, prog: str = "python -m mediacore.train") -> int:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    ap.add_argument("--pool", required=True, help="training pool (layout of shared/corpus/tools/build_train.sh)")
    ap.add_argument("--out", required=True, help="output directory (model.pt, checkpoint, config.json, model.onnx)")
    ap.add_argument("--minutes", type=float, default=None, help="time budget; the step count is fixed from the "
                    "speed of the first steps and written to config.json")
    ap.add_argument("--steps", type=int, default=None, help="number of steps (reproducible runs)")
    ap.add_argument("--cache", default=None, help="npz cache of the decoded 16 kHz pool")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--init", default=None, help="start from these weights (model.pt of an earlier run): "
                    "fine-tuning; the input statistics are kept; a larger --hidden widens it "
                    "(the same function at the start, new units grow in)")
    ap.add_argument("--teacher", default=None, help="precomputed teacher set(s) (python -m mediacore.train.teacher; "
                    "several: comma-separated, pooled): "
                    "--teacher-frac of each batch comes from it, its target moved toward the teacher's output "
                    "by --teacher-weight (not for examples above --teacher-max-snr dB, so clean speech keeps "
                    "the clean target)")
    ap.add_argument("--checkpoint-s", type=float, default=120.0)
    # --lookahead L (a DEFAULTS entry): the gains for frame t come out once frame t + L is heard (+10 ms
    # latency per frame); the exported ONNX carries it and the runtime delays its spectra to match.
    # --fine-bins 1 (a DEFAULTS entry): the model also sees the log powers of the 161 bins
    # --rt60-lo/--rt60-hi/--rir-max-s/--tail-lo/--tail-hi (DEFAULTS entries): the synthetic rooms of
    # --p-reverb: RT60 range (s), longest response (s), tail energy re the direct path (the defaults are
    # the shipped stages' rooms; halls with RT60 ~2 s need --rir-max-s 2.5)
    # --clean-targets SET[,SET...] (a DEFAULTS entry): cleaned-speech sets (python -m mediacore.train.teacher
    # --clean-speech SPEAKERS): noisy examples of those speakers target the recording without its room;
    # --p-clean: the share of nearly clean examples (SNR 40-60 dB), whose target is the recording as it is
    # --noise-weights CAT=W,...: shares of the noise categories, overriding data.NOISE_WEIGHTS
    # --mixture-ratio 1: band targets relative to the mixture's band power (see band_targets)
    # --p-perturb P: share of examples whose speaker is a pseudo-speaker (speed 0.85-1.15x, data.SPEED_RATIOS)
    # --lead-in-s S: half the examples open with up to S seconds of noise alone (give --seconds > S)
    # --pool A,B: several pools joined (the first pool and mediacore.train.sources' extra pool)
    # --df-bins K --df-taps N: a deep filter for the K lowest bins (complex taps over the last N frames,
    # the newest being the look-ahead frame), trained by the spectral loss; 0 bins: none
    for k, v in DEFAULTS.items():
        ap.add_argument("--" + k.replace("_", "-"), type=type(v), default=v)
    args = ap.parse_args(argv)
    if (args.minutes is None) == (args.steps is None) and not args.resume:
        ap.error("give exactly one of --minutes and --steps")
    cfg = {k: getattr(args, k) for k in DEFAULTS}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg["seed"])
    torch.set_num_threads(cfg["threads"])
    t0 = time.time()
    try:
        pool = Pool(args.pool, seed=cfg["seed"], max_minutes_per_speaker=cfg["max_minutes_per_speaker"],
                    cache=args.cache, threads=cfg["threads"])
    except ValueError as exc:
        ap.error(str(exc))
    print(f"pool loaded in {time.time() - t0:.0f} s: {json.dumps(pool.summary())}", flush=True)
    try:
        cleaned_set, cleaned_meta = load_cleaned_sets(cfg["clean_targets"]) if cfg["clean_targets"] else (None, None)
        mixer = Mixer(pool, seed=cfg["seed"], snr_db=(cfg["snr_lo"], cfg["snr_hi"]), p_reverb=cfg["p_reverb"],
                      p_clean=cfg["p_clean"],
                      rt60_s=(cfg["rt60_lo"], cfg["rt60_hi"]), rir_max_s=cfg["rir_max_s"],
                      tail_rms=(cfg["tail_lo"], cfg["tail_hi"]),
                      exclude_noise=tuple(c for c in cfg["exclude_noise"].split(",") if c),
                      exclude_speech=tuple(c for c in cfg["exclude_speech"].split(",") if c),
                      cleaned=cleaned_set, noise_weights=parse_noise_weights(cfg["noise_weights"]),
                      p_perturb=cfg["p_perturb"], lead_in_s=cfg["lead_in_s"])
    except (ValueError, OSError) as exc:
        ap.error(str(exc))
    gen = torch.Generator().manual_seed(cfg["seed"])
    if not 0 <= cfg["lookahead"] <= 1:
        ap.error(f"--lookahead must be 0 or 1 frames (10 ms each; the latency budget is 20 ms), got {cfg['lookahead']}")
    if not 0.0 <= cfg["teacher_frac"] < 1.0 or not 0.0 <= cfg["teacher_weight"] <= 1.0:
        ap.error(f"--teacher-frac must be in [0, 1) and --teacher-weight in [0, 1]; got {cfg['teacher_frac']} "
                 f"and {cfg['teacher_weight']}")
    try:
        teacher = TeacherSet(args.teacher, cfg["seed"]) if args.teacher else None
    except ValueError as exc:
        ap.error(str(exc))
    # at least one on-the-fly example per batch (the clean and noise-only anchors live there)
    n_teacher = min(cfg["batch"] - 1, int(round(cfg["batch"] * cfg["teacher_frac"]))) if teacher else 0
    n = int(cfg["seconds"] * SR) // HOP * HOP
    if cfg["fine_bins"] not in (0, 1):
        ap.error(f"--fine-bins must be 0 or 1, got {cfg['fine_bins']}")
    if cfg["df_bins"] and cfg["df_taps"] < cfg["lookahead"] + 1:
        ap.error(f"--df-taps must be at least --lookahead + 1 = {cfg['lookahead'] + 1}, got {cfg['df_taps']}")
    try:
        model = BandGRU(N_BANDS, cfg["hidden"], cfg["layers"], fine_bins=bool(cfg["fine_bins"]),
                        df_bins=cfg["df_bins"], df_taps=cfg["df_taps"])
    except ValueError as exc:
        ap.error(str(exc))
    feats = Features()
    init, init_conf = None, None
    if args.init:
        parent = Path(args.init).with_name("config.json")
        init_conf = json.loads(parent.read_text()) if parent.exists() else None
        if init_conf:
            init_conf.pop("loss_history", None)
        init = torch.load(args.init, map_location="cpu")
        if init["inp.weight"].shape[0] > cfg["hidden"]:
            ap.error(f"--init {args.init} has hidden {init['inp.weight'].shape[0]}, --hidden is {cfg['hidden']} "
                     "(a model can be widened, not narrowed)")
        init = widen_state(init, cfg["hidden"], torch.Generator().manual_seed(cfg["seed"] + 3000))
        if "inp_fine.weight" in init and not cfg["fine_bins"]:
            ap.error(f"--init {args.init} is a --fine-bins 1 model; give --fine-bins 1")
        model.load_band_model(init)
    # fixed input normalisation: statistics of the log powers of training mixes
    with torch.no_grad():
        acc = []
        for _ in range(cfg["stat_batches"]):
            sp, no, _ = mixer.batch(cfg["batch"], n)
            acc.append(feats.inputs(feats.stft(torch.from_numpy(sp + no)), model.n_fine > 0).reshape(-1, model.n_features))
        allf = torch.cat(acc)
        # a fine-tuned model keeps the statistics it was trained with; new bin inputs get theirs measured
        new = 0 if init is None else (N_BANDS if "inp_fine.weight" not in init else model.n_features)
        model.feat_mean[new:] = allf.mean(0)[new:]
        model.feat_std[new:] = allf.std(0).clamp_min(0.5)[new:]
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    step, total = 0, args.steps
    ckpt = out / "checkpoint.pt"
    if args.resume and ckpt.exists():
        st = torch.load(ckpt, weights_only=False)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        step, total = st["step"], (args.steps or st["total"])  # --steps with --resume extends the run
        mixer.rng = st["mixer_rng"]
        if teacher is not None:
            teacher.rng = st["teacher_rng"]
        gen.set_state(st["gen"])
        print(f"resumed at step {step}/{total}", flush=True)
    h0 = torch.zeros(cfg["layers"], cfg["batch"], cfg["hidden"])
    t_start, t_ck = time.time(), time.time()
    hist = []

    def save(final=False):
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "total": total,
                    "mixer_rng": mixer.rng, "gen": gen.get_state(),
                    "teacher_rng": teacher.rng if teacher else None}, ckpt)
        torch.save(model.state_dict(), out / "model.pt")
        conf = {"config": cfg, "steps_done": step, "steps_total": total, "pool": str(args.pool),
                "pool_summary": pool.summary(), "params": count_params(model),
                "macs_per_frame": model.macs_per_frame(), "torch": torch.__version__,
                "command": f"{prog} " + " ".join(sys.argv[1:] if argv is None else argv),
                "init": args.init, "init_config": init_conf,
                "teacher": None if teacher is None else {"path": str(args.teacher), **teacher.meta},
                "clean_targets": cleaned_meta,
                "loss_history": hist[-50:], "final": final}
        (out / "config.json").write_text(json.dumps(conf, indent=1) + "\n")

    while total is None or step < total:
        if total is None:
            lr = cfg["lr"]
        else:
            frac = step / max(total, 1)
            warm = min(1.0, (step + 1) / 100)
            lr = warm * (cfg["lr_final"] + 0.5 * (cfg["lr"] - cfg["lr_final"]) * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        sp, no, bw = mixer.batch(cfg["batch"] - n_teacher, n)
        t_audio = alpha = None
        if n_teacher:
            tsp, tno, tt, tbw, tsnr = teacher.batch(n_teacher, n)
            sp, no, bw = np.concatenate([sp, tsp]), np.concatenate([no, tno]), np.concatenate([bw, tbw])
            t_audio = torch.from_numpy(np.concatenate([np.zeros_like(sp[:-n_teacher]), tt]))
            a = np.where(tsnr <= cfg["teacher_max_snr"], cfg["teacher_weight"], 0.0)
            alpha = torch.from_numpy(np.concatenate([np.zeros(len(sp) - n_teacher), a]).astype(np.float32))
        loss, parts = _loss(model, feats, torch.from_numpy(sp), torch.from_numpy(no), torch.from_numpy(bw), h0,
                            cfg, gen, t_audio, alpha)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if total is None and step == 20:
            per = (time.time() - t_start) / 20
            total = max(20, int((args.minutes * 60 - (time.time() - t0)) / per) + 20)
            print(f"{per:.2f} s/step -> {total} steps", flush=True)
        if step % 50 == 0:
            hist.append([step, round(loss.item(), 5), *[round(p, 5) for p in parts]])
            print(f"step {step}/{total} lr {lr:.2e} loss {loss.item():.4f} band/spec/vad {parts} "
                  f"{time.time() - t_start:.0f} s", flush=True)
        if time.time() - t_ck > args.checkpoint_s:
            save()
            t_ck = time.time()
    save(final=True)
    export_onnx(model, str(out / "model.onnx"), lookahead=cfg["lookahead"])
    digest = hashlib.sha256((out / "model.onnx").read_bytes()).hexdigest()
    print(f"done: {step} steps, model.onnx sha256 {digest}", flush=True)
    return 0
