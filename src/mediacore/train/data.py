"""On-the-fly training mixtures from a speech pool and a noise pool (16 kHz, numpy).

Pool layout: ``shared/corpus/tools/build_train.sh`` (``speech/<speaker>/*.flac``
+ ``speech/index.json``, ``noise/<category>/*.flac`` + ``noise/index.json``).
Any folder of ``.flac``/``.wav`` files laid out the same way works (e.g.
VoiceBank-DEMAND clean_trainset_wav as one speaker folder); without an
index, bandwidth is taken as 8 kHz and the category is the folder name.

Synthetic noises are made here (seeded): spectrally shaped and amplitude
modulated noise, impulsive noise (clicks, knocks), hum and fans with
drifting pitch, and mixtures of several noises.
"""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import fftconvolve, lfilter, resample_poly

SR = 16000

#: sampling weight per speaker group (prefix of the speaker folder name); others get DEFAULT_WEIGHT
SPEAKER_WEIGHTS = {"asterisk-allison": 0.25, "asterisk-ivrvoice": 0.15, "fillets": 0.25, "fotaq": 0.12,
                   "hedgewars": 0.23,
                   # the wider pool (mediacore.train.sources): many voices, each group shared by its speakers
                   "tuxpaint": 0.30, "klettres": 0.20, "asterisk-es-co": 0.08, "asterisk-fr-armelle": 0.08}
#: at most this many minutes are loaded per speaker (FOTAQ is 60 % of the pool and narrowband)
MAX_MINUTES_PER_SPEAKER = 20.0
NOISE_WEIGHTS = {"music": 0.16, "traffic": 0.04, "crowd": 0.04, "industry": 0.04, "nature": 0.04,
                 "construction": 0.04, "white": 0.03, "pink": 0.03, "brown": 0.03, "hum50": 0.02,
                 "hum60": 0.02, "babble": 0.06, "babble_synth": 0.06, "synthetic": 0.40,
                 "sonicpi-machine": 0.06, "sonicpi-ambience": 0.04, "openttd": 0.06, "keyboard": 0.04}
DEFAULT_WEIGHT = 0.05


def _group_weight(name: str, table: dict) -> float:
    """The weight of the longest key that ``name`` starts with ("babble_synth" before "babble")."""
    keys = [k for k in table if name.startswith(k)]
    return table[max(keys, key=len)] if keys else DEFAULT_WEIGHT


def parse_noise_weights(spec: str) -> dict[str, float]:
    """'crowd=0.08,traffic=0.08' -> {'crowd': 0.08, 'traffic': 0.08} (--noise-weights)."""
    out = {}
    for item in (i for i in spec.split(",") if i):
        name, _, value = item.partition("=")
        try:
            if not name.strip():
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"--noise-weights: expected CATEGORY=WEIGHT, got {item!r}") from None
    return out


def _load(path, sr_out: int = SR) -> np.ndarray | None:
    if isinstance(path, tuple):  # (noisy, clean) pair: the noise is their difference
        noisy, clean = (_load(p, sr_out) for p in path)
        if noisy is None or clean is None:
            return None
        n = min(len(noisy), len(clean))
        return noisy[:n] - clean[:n]
    try:
        x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError):  # unreadable (e.g. still being written): skipped
        return None
    x = x.mean(axis=1)
    if sr != sr_out:
        g = math.gcd(sr, sr_out)
        x = resample_poly(x, sr_out // g, sr // g).astype(np.float32)
    return x


def _index(folder: Path) -> dict:
    p = folder / "index.json"
    if not p.exists():
        return {}
    data = json.loads(p.read_text())
    rows = data if isinstance(data, list) else data.get("files", data)
    out = {}
    if isinstance(rows, dict):
        rows = [dict(v, path=k) for k, v in rows.items()]
    for r in rows:
        key = r.get("path") or r.get("file") or r.get("name")
        if key:
            out["/".join(Path(key).parts[-2:])] = r  # <speaker or category>/<file>
    return out


def detect_layout(root: Path) -> str:
    """``pool`` (speech/<speaker>/, noise/<category>/ as build_train.sh makes it), ``dns``
    (DNS-Challenge: clean*/ and noise*/ folders) or ``voicebank`` (VoiceBank-DEMAND:
    clean_trainset*wav/ + noisy_trainset*wav/)."""
    if not root.is_dir():
        raise ValueError(f"training pool {root}: not a directory")
    names = [d.name for d in root.iterdir() if d.is_dir()]
    if "speech" in names:
        return "pool"
    if any(n.startswith("clean_trainset") for n in names) and any(n.startswith("noisy_trainset") for n in names):
        return "voicebank"
    if any(n.lower().startswith("clean") for n in names) and any(n.lower().startswith("noise") for n in names):
        return "dns"
    raise ValueError(f"training pool {root}: expected speech/ and noise/ folders (build_train.sh layout), "
                     f"clean*/ and noise*/ (DNS-Challenge) or clean_trainset*wav/ and noisy_trainset*wav/ "
                     f"(VoiceBank-DEMAND); found {sorted(names)}")


def _layout_dirs(root: Path, layout: str) -> tuple[list[tuple[str, Path]], list[tuple[str, Path]]]:
    """(speaker name, folder) and (noise category, folder) lists of a pool."""
    subdirs = sorted(d for d in root.iterdir() if d.is_dir())
    if layout == "pool":
        noise = root / "noise"
        return ([(d.name, d) for d in sorted((root / "speech").iterdir()) if d.is_dir()],
                [(d.name, d) for d in sorted(noise.iterdir()) if d.is_dir()] if noise.is_dir() else [])
    if layout == "voicebank":
        return [("voicebank", next(d for d in subdirs if d.name.startswith("clean_trainset")))], []
    return ([(f"dns-{d.name}", d) for d in subdirs if d.name.lower().startswith("clean")],
            [(d.name, d) for d in subdirs if d.name.lower().startswith("noise")])


def _audio_files(folder: Path, *, recursive: bool) -> list[Path]:
    pick = folder.rglob if recursive else folder.glob
    return sorted(list(pick("*.flac")) + list(pick("*.wav")))


class Pool:
    """Speech utterances and noise recordings held in memory at 16 kHz (layouts: :func:`detect_layout`)."""

    def __init__(self, root: str | Path, *, seed: int = 0, max_minutes_per_speaker: float = MAX_MINUTES_PER_SPEAKER,
                 cache: str | Path | None = None, threads: int = 2,
                 max_minutes_per_noise: float = 40.0) -> None:
        self.speakers: dict[str, list[tuple[np.ndarray, float]]] = {}
        self.noises: dict[str, list[np.ndarray]] = {}
        cache_file = Path(cache) if cache else None
        if cache_file and cache_file.exists():
            self._from_cache(cache_file)
            return
        roots = [r for r in str(root).split(",") if r]
        if len(roots) > 1:  # several pools (the first pool + mediacore.train.sources' extra one): joined
            for i, r in enumerate(roots):
                part = Pool(r, seed=seed + i, max_minutes_per_speaker=max_minutes_per_speaker, threads=threads,
                            max_minutes_per_noise=max_minutes_per_noise)
                for table, new in ((self.speakers, part.speakers), (self.noises, part.noises)):
                    clash = set(table) & set(new)
                    if clash:
                        raise ValueError(f"training pools {roots}: {r} repeats the names {sorted(clash)[:5]}")
                    table.update(new)
            if cache_file:
                self._to_cache(cache_file)
            return
        root = Path(roots[0])
        rng = np.random.default_rng(seed)
        layout = detect_layout(root)
        speech_dirs, noise_dirs = _layout_dirs(root, layout)
        sidx = _index(root / "speech") if layout == "pool" else {}
        jobs = []
        for name, spk_dir in speech_dirs:
            files = _audio_files(spk_dir, recursive=layout != "pool")
            rng.shuffle(files)
            total, chosen = 0.0, []
            for f in files:
                info = sidx.get(f"{spk_dir.name}/{f.name}", {})
                try:
                    dur = float(info.get("duration_s") or sf.info(str(f)).duration)
                except (RuntimeError, sf.LibsndfileError):
                    continue
                if total + dur > max_minutes_per_speaker * 60:
                    break
                total += dur
                chosen.append((f, float(info.get("bandwidth_hz", 8000.0))))
            jobs += [(name, f, bw) for f, bw in chosen]
        nidx = _index(root / "noise") if layout == "pool" else {}
        for name, cat_dir in noise_dirs:
            files = _audio_files(cat_dir, recursive=layout != "pool")
            rng.shuffle(files)
            total = 0.0
            for f in files:
                if total > max_minutes_per_noise * 60:
                    break
                try:
                    total += sf.info(str(f)).duration
                except (RuntimeError, sf.LibsndfileError):
                    continue
                jobs.append(("noise:" + str(nidx.get(f"{cat_dir.name}/{f.name}", {}).get("category", name)), f, 0.0))
        if layout == "voicebank":
            # VoiceBank-DEMAND ships mixtures, not noise: the noise is noisy - clean, file by file
            clean_dir = speech_dirs[0][1]
            noisy_dir = next(d for d in root.iterdir() if d.is_dir() and d.name.startswith("noisy_trainset"))
            budget = max_minutes_per_noise * 60
            for f in sorted(noisy_dir.glob("*.wav")):
                if budget <= 0:
                    break
                if (clean_dir / f.name).exists():
                    jobs.append(("noise:demand", (f, clean_dir / f.name), 0.0))
                    budget -= sf.info(str(f)).duration
        if not any(not j[0].startswith("noise:") for j in jobs):
            raise ValueError(f"training pool {root}: no speech files found ({layout} layout)")
        with ThreadPoolExecutor(threads) as ex:
            audio = list(ex.map(lambda j: _load(j[1]), jobs))
        for (name, _, bw), x in zip(jobs, audio):
            if x is None or len(x) < SR // 10:
                continue
            if name.startswith("noise:"):
                self.noises.setdefault(name[6:], []).append(x)
            else:
                self.speakers.setdefault(name, []).append((x, bw))
        if cache_file:
            self._to_cache(cache_file)

    def _to_cache(self, path: Path) -> None:
        arrays, meta = {}, {"speakers": {}, "noises": {}}
        for s, items in self.speakers.items():
            meta["speakers"][s] = [bw for _, bw in items]
            for i, (x, _) in enumerate(items):
                arrays[f"s|{s}|{i}"] = x
        for c, items in self.noises.items():
            meta["noises"][c] = len(items)
            for i, x in enumerate(items):
                arrays[f"n|{c}|{i}"] = x
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **arrays)

    def _from_cache(self, path: Path) -> None:
        z = np.load(path)
        meta = json.loads(bytes(z["meta"]).decode())
        for s, bws in meta["speakers"].items():
            self.speakers[s] = [(z[f"s|{s}|{i}"], bw) for i, bw in enumerate(bws)]
        for c, n in meta["noises"].items():
            self.noises[c] = [z[f"n|{c}|{i}"] for i in range(n)]

    def summary(self) -> dict:
        return {"speech_minutes": {s: round(sum(len(x) for x, _ in v) / SR / 60, 2) for s, v in self.speakers.items()},
                "noise_minutes": {c: round(sum(len(x) for x in v) / SR / 60, 2) for c, v in self.noises.items()}}


# --------------------------------------------------------------------------- synthetic noise


def _shaped_noise(rng, n):
    """Gaussian noise with a random smooth spectrum (tilt + peaks), optionally amplitude modulated."""
    spec = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    f = np.linspace(0, SR / 2, n // 2 + 1)
    tilt = rng.uniform(-2.0, 1.0)  # power slope per octave in units of 3 dB
    shape = (np.maximum(f, 50.0) / 1000.0) ** (tilt / 2)
    for _ in range(rng.integers(0, 4)):
        fc, bw = rng.uniform(100, 7000), rng.uniform(50, 1500)
        shape *= 1 + rng.uniform(1, 10) * np.exp(-0.5 * ((f - fc) / bw) ** 2)
    x = np.fft.irfft(spec * shape, n)
    if rng.random() < 0.5:
        t = np.arange(n) / SR
        rate = rng.uniform(0.1, 8.0)
        depth = rng.uniform(0.3, 1.0)
        x *= 1 - depth * 0.5 * (1 + np.sin(2 * np.pi * rate * t + rng.uniform(0, 6.3)))
    return x


def _impulses(rng, n):
    """Clicks (keyboard), knocks and taps: decaying resonant bursts at random times."""
    x = np.zeros(n)
    rate = rng.uniform(1.0, 12.0)
    t = 0
    kind = rng.integers(0, 3)
    while True:
        t += int(rng.exponential(SR / rate)) + 1
        if t >= n:
            break
        length = int(SR * (rng.uniform(0.003, 0.02) if kind == 0 else rng.uniform(0.02, 0.15)))
        burst = rng.standard_normal(length) * np.exp(-np.arange(length) / (length / rng.uniform(3, 8)))
        if kind != 0:  # knock: resonant low-mid body
            fc = rng.uniform(80, 1500)
            r = 0.995 if kind == 1 else 0.98
            burst = lfilter([1.0], [1.0, -2 * r * np.cos(2 * np.pi * fc / SR), r * r], burst)
        e = min(n, t + length)
        x[t:e] += burst[: e - t] * rng.uniform(0.3, 1.0)
    if rng.random() < 0.5:  # a floor of background noise under the clicks
        x += 0.02 * np.std(x) * rng.standard_normal(n)
    return x


def _hum(rng, n):
    """Hum, fans and motors: harmonic tone with drifting pitch (+ broadband whoosh)."""
    t = np.arange(n) / SR
    f0 = rng.uniform(40, 400)
    drift = 1 + rng.uniform(0.0, 0.08) * np.sin(2 * np.pi * rng.uniform(0.02, 0.5) * t + rng.uniform(0, 6.3))
    drift *= 1 + np.cumsum(rng.standard_normal(n)) * rng.uniform(0, 2e-5) / np.sqrt(n / SR)
    phase = 2 * np.pi * np.cumsum(f0 * drift) / SR
    x = np.zeros(n)
    slope = rng.uniform(0.5, 2.0)
    for h in range(1, int(min(30, 7000 // f0)) + 1):
        x += np.sin(h * phase + rng.uniform(0, 6.3)) * rng.uniform(0.2, 1.0) / h ** slope
    if rng.random() < 0.6:
        w = _shaped_noise(rng, n)
        x += w / (np.std(w) + 1e-9) * np.std(x) * rng.uniform(0.1, 1.0)
    return x


SYNTH = (_shaped_noise, _impulses, _hum)


def _norm(x, level_db=-30.0):
    rms = np.sqrt(np.mean(x.astype(np.float64) ** 2)) + 1e-9
    return (x * (10 ** (level_db / 20) / rms)).astype(np.float32)


def synth_noise(rng, n):
    k = rng.integers(0, len(SYNTH) + 1)
    if k < len(SYNTH):
        return _norm(SYNTH[k](rng, n))
    a, b = rng.choice(len(SYNTH), 2)
    return _norm(_norm(SYNTH[a](rng, n)) + _norm(SYNTH[b](rng, n)) * 10 ** (rng.uniform(-10, 5) / 20))


# --------------------------------------------------------------------------- mixing


#: speed perturbation (up, down) for pseudo-speakers: 0.85x to 1.15x the utterance's length
SPEED_RATIOS = ((17, 20), (9, 10), (19, 20), (21, 20), (11, 10), (23, 20))

#: the part of a room response kept in the training target (direct sound + early reflections)
EARLY_MS = 50.0


def synth_rir(rng, rt60_s, max_s: float = 1.0, tail_rms=(0.2, 0.6)):
    """A synthetic room impulse response: direct path (1.0) + exponentially decaying, low-passed
    noise tail with the given RT60 (60 dB decay time), at 16 kHz, at most ``max_s`` long; the
    tail's root energy relative to the direct path is drawn from ``tail_rms`` (wetness)."""
    n = int(SR * min(max_s, 1.2 * rt60_s)) + 1
    t = np.arange(n) / SR
    tail = rng.standard_normal(n) * 10 ** (-3.0 * t / rt60_s)  # -60 dB at rt60
    tail = lfilter([1 - 0.5], [1, -0.5], tail)  # walls absorb highs faster
    onset = int(SR * rng.uniform(0.002, 0.01))  # first reflection after the direct path
    tail[:onset] = 0.0
    rir = tail * rng.uniform(*tail_rms) / (np.sqrt(np.sum(tail ** 2)) + 1e-12)
    rir[0] = 1.0
    return rir


def reverberate(rng, speech, rt60_s, max_s: float = 1.0, tail_rms=(0.2, 0.6)):
    """(early, late): speech through a synthetic room, split at EARLY_MS.  Training keeps the
    early part as the target and counts the late tail as noise, so the model learns to
    remove late reverberation instead of treating it as speech."""
    rir = synth_rir(rng, rt60_s, max_s, tail_rms)
    k = int(SR * EARLY_MS / 1000)
    n = len(speech)
    early = fftconvolve(speech, rir[:k])[:n]
    late = fftconvolve(speech, rir)[:n] - early
    scale = np.sqrt(np.mean(speech.astype(np.float64) ** 2) / (np.mean(early ** 2) + 1e-20))
    return (early * scale).astype(np.float32), (late * scale).astype(np.float32)


def _crop(rng, x, n):
    if len(x) >= n:
        s = rng.integers(0, len(x) - n + 1)
        return x[s: s + n]
    reps = int(np.ceil(n / len(x)))
    return np.tile(x, reps)[:n]  # short recordings are looped


class Mixer:
    """Draws (speech, noise, speech bandwidth Hz) examples of ``n`` samples at 16 kHz.

    The speech and the noise are returned separately; the training step mixes
    them (after EQ) in the STFT domain.  Levels: speech -40..-15 dBFS active
    level (the pool is at -26), SNR ``snr_db`` uniform, plus ``p_clean`` of
    nearly clean examples (SNR 40-60 dB) and ``p_noise_only`` of examples
    without speech.  ``p_reverb`` of the speech goes through a synthetic room
    (RT60 ``rt60_s``, impulse responses at most ``rir_max_s`` long, tail
    wetness ``tail_rms``, see :func:`synth_rir`): the early part is the
    target, the late tail is added to the noise.  ``exclude_noise`` drops
    noise categories (held-out tests), ``exclude_speech`` speakers (by name prefix; e.g. reverberant recordings
    that would teach the model that room reverberation is speech).

    ``noise_weights``: category (name prefix) -> share of the noise draws, overriding
    ``NOISE_WEIGHTS`` (the shares are normalised over the categories present).

    ``cleaned``: a cleaned-speech set (``python -m mediacore.train.teacher --clean-speech``), the
    teacher's output for some speakers' utterances.  In a noisy example such an utterance's target
    is the cleaned version and the rest of the recording (its room tone and reverberation) joins the
    noise; in a nearly clean example (``p_clean``) the target stays the recording as it is.  The model
    so learns to take a recording's room out along with the noise, and to leave clean input alone.
    """

    def __init__(self, pool: Pool, *, seed: int, snr_db=(-5.0, 25.0), p_clean: float = 0.05,
                 p_noise_only: float = 0.08, p_mix: float = 0.25, synth_bank: int = 240, p_reverb: float = 0.0,
                 rt60_s=(0.2, 0.9), rir_max_s: float = 1.0, tail_rms=(0.2, 0.6),
                 exclude_noise: tuple[str, ...] = (), exclude_speech: tuple[str, ...] = (),
                 cleaned=None, noise_weights: dict[str, float] | None = None, p_perturb: float = 0.0,
                 lead_in_s: float = 0.0) -> None:
        if not (0 < rt60_s[0] <= rt60_s[1] and rir_max_s > 0 and 0 <= tail_rms[0] <= tail_rms[1]):
            raise ValueError(f"Mixer: rooms need 0 < RT60 low <= high, a positive response length and "
                             f"0 <= tail low <= high; got RT60 {rt60_s} s, length {rir_max_s} s, tail {tail_rms}")
        if not 0.0 <= p_clean <= 1.0:
            raise ValueError(f"Mixer: the share of nearly clean examples must be in [0, 1], got {p_clean}")
        if not (0.0 <= p_perturb <= 1.0 and lead_in_s >= 0):
            raise ValueError(f"Mixer: expected 0 <= p_perturb <= 1 and lead_in_s >= 0, got {p_perturb}, {lead_in_s}")
        self.pool, self.rng = pool, np.random.default_rng(seed)
        self.p_perturb, self.lead_in_s = p_perturb, lead_in_s
        self.p_reverb, self.rt60_s, self.rir_max_s, self.tail_rms = p_reverb, rt60_s, rir_max_s, tail_rms
        self.snr_db, self.p_clean, self.p_noise_only, self.p_mix = snr_db, p_clean, p_noise_only, p_mix
        self.spk_names = [s for s in pool.speakers if not any(s.startswith(e) for e in exclude_speech)]
        if not self.spk_names:
            raise ValueError(f"Mixer: every speaker is excluded by {exclude_speech}")
        w = np.array([_group_weight(s, SPEAKER_WEIGHTS) for s in self.spk_names])
        # a group weight is shared by the speakers of the group
        groups = [next((k for k in SPEAKER_WEIGHTS if s.startswith(k)), s) for s in self.spk_names]
        counts = {g: groups.count(g) for g in groups}
        w = w / np.array([counts[g] for g in groups])
        self.spk_p = w / w.sum()
        # synthetic noises: a bank made once (seeded), cropped like the recordings
        bank_rng = np.random.default_rng(seed + 1000)
        self.synth_bank = [synth_noise(bank_rng, 8 * SR) for _ in range(synth_bank)]
        self.noise_names = [c for c in list(pool.noises) + ["synthetic", "babble_synth"]
                            if not any(c.startswith(e) for e in exclude_noise)]
        if not self.noise_names:
            raise ValueError(f"Mixer: every noise category is excluded by {exclude_noise}")
        table = {**NOISE_WEIGHTS, **(noise_weights or {})}
        for k, v in (noise_weights or {}).items():
            if not v >= 0 or not any(c.startswith(k) for c in self.noise_names):
                raise ValueError(f"Mixer: noise weight {k}={v} needs a weight >= 0 and a category of the pool "
                                 f"starting with {k!r}; the categories are {sorted(self.noise_names)}")
        w = np.array([_group_weight(c, table) for c in self.noise_names])
        if not w.sum() > 0:
            raise ValueError(f"Mixer: every noise category has weight 0 ({noise_weights})")
        self.noise_p = w / w.sum()
        self.cleaned = self._match_cleaned(cleaned) if cleaned is not None else {}

    def _match_cleaned(self, cleaned) -> dict[str, list]:
        """speaker -> cleaned utterances aligned with ``pool.speakers[speaker]`` (None where absent)."""
        from .teacher import item_key

        keys = {k for k in cleaned.keys() if k != "meta"}
        out, used = {}, 0
        for s in self.spk_names:
            row = []
            for i, (x, _) in enumerate(self.pool.speakers[s]):
                k = item_key(s, i, x)
                row.append(np.asarray(cleaned[k], np.float32) if k in keys else None)
                if k in keys and len(row[-1]) != len(x):
                    raise ValueError(f"Mixer: cleaned utterance {k} has {len(row[-1])} samples, the pool's has {len(x)}")
            if any(r is not None for r in row):
                out[s] = row
                used += sum(r is not None for r in row)
        if used < len(keys):
            raise ValueError(f"Mixer: {len(keys) - used} of {len(keys)} cleaned utterances match no utterance of the "
                             "training speakers (made from another pool or seed, or the speaker is excluded)")
        return out

    def _noise(self, n):
        rng = self.rng
        c = self.noise_names[rng.choice(len(self.noise_names), p=self.noise_p)]
        if c == "babble_synth":  # 3-7 pool talkers at random levels (the speech sampler's own pool)
            acc = np.zeros(n, np.float32)
            for _ in range(rng.integers(3, 8)):
                acc += self._speech(n)[0] * 10 ** (rng.uniform(-6, 0) / 20)
            return _norm(acc)
        items = self.synth_bank if c == "synthetic" else self.pool.noises[c]
        return _norm(_crop(rng, items[rng.integers(len(items))], n))

    def _speech(self, n):
        """(speech, bandwidth, cleaned speech or None): utterances of one speaker laid end to end."""
        rng = self.rng
        s = self.spk_names[rng.choice(len(self.spk_names), p=self.spk_p)]
        items, cleaned = self.pool.speakers[s], self.cleaned.get(s)
        out = np.zeros(n, np.float32)
        clean = np.zeros(n, np.float32) if cleaned else None
        # a pseudo-speaker: every utterance of this example played faster or slower (pitch and formants
        # move together, as between a smaller and a larger vocal tract)
        ratio = SPEED_RATIOS[rng.integers(len(SPEED_RATIOS))] if rng.random() < self.p_perturb else None
        if ratio is not None:
            items = [(resample_poly(x, *ratio).astype(np.float32), b * ratio[1] / ratio[0]) for x, b in
                     (items[j] for j in rng.integers(len(items), size=8))]
            cleaned = None if cleaned is None else [None] * len(items)
        # half the examples open with up to lead_in_s of noise alone: the model hears the floor first
        lead = rng.uniform(0, self.lead_in_s) if self.lead_in_s > 0 and rng.random() < 0.5 else rng.uniform(-0.5, 0.5)
        pos = int(lead * SR)
        bw = 24000.0
        while pos < n:
            i = rng.integers(len(items))
            x, b = items[i]
            bw = min(bw, b)
            s0, s1 = max(pos, 0), min(pos + len(x), n)
            if s1 > s0:
                out[s0:s1] += x[s0 - pos: s1 - pos]
                if clean is not None:
                    c = cleaned[i] if cleaned[i] is not None else x
                    clean[s0:s1] += c[s0 - pos: s1 - pos]
            pos += len(x) + int(rng.exponential(0.4) * SR)
        return out, bw, clean

    def example(self, n):
        rng = self.rng
        noise = self._noise(n)
        if rng.random() < self.p_mix:
            noise = noise + self._noise(n) * 10 ** (rng.uniform(-10, 3) / 20)
            noise = _norm(noise)
        if rng.random() < self.p_noise_only:
            speech, bw = np.zeros(n, np.float32), 8000.0
            level = rng.uniform(-50, -20)
            return speech, noise * 10 ** ((level + 30) / 20), bw
        speech, bw, cleaned = self._speech(n)
        gain_db = rng.uniform(-14, 11)  # active level -40 .. -15 dBFS
        nearly_clean = rng.random() < self.p_clean
        snr = rng.uniform(40, 60) if nearly_clean else rng.uniform(*self.snr_db)
        # pool speech is at -26 dBFS active level, noise at -30 dBFS mean level
        noise_db = -26 + gain_db - snr
        noise = noise * 10 ** ((noise_db + 30) / 20)
        speech = speech * 10 ** (gain_db / 20)
        if cleaned is not None and not nearly_clean:
            cleaned = cleaned * 10 ** (gain_db / 20)
            noise = noise + (speech - cleaned)  # the recording's room counts as noise
            speech = cleaned
        if self.p_reverb > 0 and rng.random() < self.p_reverb:
            speech, late = reverberate(rng, speech, rng.uniform(*self.rt60_s), self.rir_max_s, self.tail_rms)
            noise = noise + late
        return speech, noise, bw

    def batch(self, batch_size, n):
        sp, no, bw = zip(*(self.example(n) for _ in range(batch_size)))
        return np.stack(sp), np.stack(no), np.array(bw, np.float32)
