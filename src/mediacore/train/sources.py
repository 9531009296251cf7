"""The wider training pool and the generalization set, built from pinned Debian packages.

Two jobs, one allow-list (:data:`PACKAGES`), every package held whole on one side:

``python -m mediacore.train.sources pool DEST``
    Extra speakers and noise categories in the training-pool layout (``speech/<speaker>/*.flac``,
    ``noise/<category>/*.flac``, ``index.json`` in each, ``manifest.json``, ``LICENSES.md``).
    Training reads it beside the first pool: ``mediacore train --pool POOL,DEST``.
``python -m mediacore.train.sources genset DEST``
    The generalization set in the development set's layout (``manifest.csv``, ``clean/``, ``noisy/``):
    speakers and noise sources that are in neither the training pool nor the dev set, so
    ``mediacore bench --corpus DEST`` scores what a model does on material it never met.

Packages reserved for the project's independent evaluation are refused by name
(:data:`RESERVED`), whichever role a future edit gives them. Downloads use ``apt-get download`` of the
pinned version and check its sha256; nothing is installed. Every random choice is seeded.
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import hashlib
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly, welch

SR = 48000

#: never read, whatever role a source is given (the project's independent evaluation holds them)
RESERVED = ("alsa-utils", "asterisk-core-sounds-fr-*", "asterisk-core-sounds-it-*", "fillets-ng-data-nl",
            "gcompris-qt-data", "gcin-voice", "ktuberling-data", "lugaru-data", "ufoai-sound", "wesnoth-*-data",
            "widelands-data")  # widelands: its sound effects are reserved; its music is read by the first pool only


@dataclass(frozen=True)
class Source:
    version: str
    sha256: str
    role: str        # "train" (pool) or "gen" (generalization set)
    kind: str        # "speech", "noise" or "speech+noise"
    license: str


PACKAGES = {
    # ---- training pool: speech
    "tuxpaint-stamps-default": Source("2022.06.04-1", "6db6c1bfc870a47f1499d6203b083522eacb57c5f9c87d468f2e92eb6d9d5f34",
                                      "train", "speech", "GPL-2 (Tux Paint stamps, New Breed Software and contributors)"),
    "klettres-data": Source("4:22.12.3-1", "1186d257a19e84230856baea0b0b1ded8be9195080fcdb2588970b5cd937f5a8",
                            "train", "speech", "GPL-2+ (KLettres, KDE; see its debian/copyright per language)"),
    "asterisk-prompt-es-co": Source("0.20070403-2.1", "6702696e045514699e87dc8fb70f370717e5df91f821f7bec8dd0df1be008e83",
                                    "train", "speech", "GPL-2 (Avatar Ltda. / July E. Jimenez)"),
    "asterisk-prompt-fr-armelle": Source("20070613-2.2",
                                         "162570b1a9b3512a98f06b89f60c7c17cf1b9b52297315adca9a4e5be728bea3",
                                         "train", "speech", "GPL-2 (Armelle Desjardins prompts)"),
    # ---- training pool: noise
    "sonic-pi-samples": Source("3.2.2~repack-8", "25f2312d2fae005e6ad0f4726b8ed3084e776006a5a132083506e960224ac79d",
                               "train", "noise", "CC0-1.0 (Sonic Pi samples, per-file credits in its README)"),
    "openttd-opensfx": Source("1.0.3-2", "2898b4677a3caccc4abc08fb4cf83319047b5a04729291deb5c77a8cd713c006",
                              "train", "noise", "CC-BY-SA-3.0 / CC0 per clip (OpenSFX; see its license.txt)"),
    "bucklespring-data": Source("1.4.0-2", "2add9f5583b3afc9c0b528066f4578baff930b74d4a94c8a25d103ef79a444e5",
                                "train", "noise", "GPL-2+ (bucklespring, Ico Doornekamp)"),
    # ---- generalization set (never in the pool)
    "asterisk-prompt-it-menardi-wav": Source("1:1.4.22+mm20110907-3.1",
                                             "3094530d98f8758ac275572d59624c41f60969fef883f34f4886d144f3dfeb21",
                                             "gen", "speech", "CC-BY-SA-3.0 (Marco Menardi)"),
    "qabcs-data": Source("1.0.2-6", "3484da4cf258e6f3a39a1fc99bbfcaddfd679cff96a8fa792f261ab0a2bf9d86",
                         "gen", "speech+noise", "GPL-3+ / CC0-1.0 / MIT / public domain per file (qabcs)"),
    "scorched3d-data": Source("44+dfsg-8", "b0be0a6d561966a62b1f135e0e6f5681c85f12e34ecad5777cb1af9fbcb7f1da",
                              "gen", "noise", "GPL-2+ / CC-BY-SA-3 / Expat / public domain per file (Scorched3D)"),
    "openarena-data": Source("0.8.5split-14", "fa68862434f02a826b7ef22008f25f406623abf4e37113c1bfab5460065483c8",
                             "gen", "noise", "GPL-2+ (OpenArena)"),
    "megaglest-data": Source("3.13.0-3", "ed4783d9fc78e201a548b266f7c30325eb16cfd58a20bf4597dd6e622f84a07e",
                             "gen", "noise", "CC-BY-SA-3.0 (MegaGlest)"),
}

#: packages the first pool (shared/corpus/tools/build_train.sh) and the dev set read: never in the gen set
FIRST_POOL_AND_DEV = ("asterisk-core-sounds-en-g722", "asterisk-core-sounds-es-g722", "asterisk-core-sounds-ru-g722",
                      "asterisk-moh-opsound-wav", "fillets-ng-data", "fillets-ng-data-cs", "flight-of-the-amazon-queen",
                      "hedgewars-data", "lincity-ng-data", "widelands-data")


def check_allowed(name: str) -> None:
    for pat in RESERVED:
        if fnmatch.fnmatch(name, pat) and name != "widelands-data":
            raise ValueError(f"sources: package {name!r} is reserved for independent evaluation ({pat})")


def split_is_clean() -> list[str]:
    """Problems with the split (empty when every package is on one side only)."""
    bad = []
    for name, src in PACKAGES.items():
        try:
            check_allowed(name)
        except ValueError as exc:
            bad.append(str(exc))
        if src.role == "gen" and name in FIRST_POOL_AND_DEV:
            bad.append(f"{name}: in the first pool or the dev set and in the generalization set")
        if src.role not in ("train", "gen"):
            bad.append(f"{name}: role {src.role!r}")
    return bad


# --------------------------------------------------------------------------- fetching


def fetch(name: str, cache: Path) -> Path:
    """Download the pinned .deb once, check its sha256, unpack it; returns the unpacked root."""
    check_allowed(name)
    src = PACKAGES[name]
    debs, root = cache / "debs", cache / "x" / name
    debs.mkdir(parents=True, exist_ok=True)
    found = sorted(debs.glob(f"{name}_*.deb"))
    if not found:
        cmd = ["apt-get", "download", "-q", f"{name}={src.version}"]
        res = subprocess.run(cmd, cwd=debs, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"sources: {' '.join(cmd)} failed: {res.stderr.strip()[-300:]} "
                               "(needs apt sources carrying Debian 12 bookworm)")
        found = sorted(debs.glob(f"{name}_*.deb"))
    deb = found[-1]
    digest = hashlib.sha256(deb.read_bytes()).hexdigest()
    if digest != src.sha256:
        raise RuntimeError(f"sources: {deb.name}: expected sha256 {src.sha256}, got {digest}")
    stamp = root / ".unpacked"
    if not stamp.exists() or stamp.read_text() != digest:
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        stamp.write_text(digest)
    return root


# --------------------------------------------------------------------------- decoding and levels


def decode(data: bytes | Path, name: str = "") -> tuple[np.ndarray, int]:
    """Mono float32 and its rate from a file or bytes (PyAV: GSM, Ogg, WAV, FLAC alike)."""
    import av

    fmt = "gsm" if str(name or data).endswith(".gsm") else None
    src = io.BytesIO(data) if isinstance(data, bytes) else str(data)
    with av.open(src, format=fmt) as c:
        st = c.streams.audio[0]
        rate = st.codec_context.sample_rate or 8000
        to_mono = av.AudioResampler(format="flt", layout="mono", rate=rate)
        chunks = [f.to_ndarray()[0] for frame in c.decode(st) for f in to_mono.resample(frame)]
        chunks += [f.to_ndarray()[0] for f in to_mono.resample(None)]
    if not chunks:
        return np.zeros(0, np.float32), rate
    return np.concatenate(chunks).astype(np.float32), int(rate)


def to_rate(x: np.ndarray, sr: int, sr_out: int = SR) -> np.ndarray:
    if sr == sr_out:
        return x.astype(np.float32)
    g = math.gcd(sr, sr_out)
    return resample_poly(x, sr_out // g, sr // g, window=("kaiser", 8.0)).astype(np.float32)


def active_level_db(x: np.ndarray, sr: int = SR) -> float:
    """Speech active level (dBFS): the mean power of 10 ms frames within 35 dB of the loudest 5 %
    (an approximation of ITU-T P.56's threshold method, good to ~0.5 dB on prompts)."""
    hop = sr // 100
    n = len(x) // hop
    if n == 0:
        return -200.0
    p = (x[: n * hop].astype(np.float64).reshape(n, hop) ** 2).mean(1) + 1e-20
    ref = np.percentile(p, 95)
    act = p[p >= ref * 10 ** (-3.5)]
    return float(10 * np.log10(act.mean()))


def mean_level_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(x.astype(np.float64) ** 2) + 1e-20))


def bandwidth_hz(x: np.ndarray, sr: int) -> float:
    """Highest frequency whose long-term power is within 50 dB of the spectrum's peak (smoothed)."""
    if len(x) < 1024:
        return sr / 2
    f, p = welch(x, sr, nperseg=1024)
    p = np.convolve(p, np.ones(5) / 5, mode="same")
    above = np.nonzero(p > p.max() * 1e-5)[0]
    return float(f[above[-1]]) if len(above) else sr / 2


def trim_silence(x: np.ndarray, sr: int, keep_s: float = 0.1, floor_db: float = 45.0) -> np.ndarray:
    """Cut leading and trailing stretches more than ``floor_db`` under the loudest 10 ms frame."""
    hop = sr // 100
    n = len(x) // hop
    if n < 3:
        return x
    p = (x[: n * hop].astype(np.float64).reshape(n, hop) ** 2).mean(1)
    on = np.nonzero(p > p.max() * 10 ** (-floor_db / 10))[0]
    if not len(on):
        return x[:0]
    k = int(keep_s * sr)
    return x[max(0, on[0] * hop - k): min(len(x), (on[-1] + 1) * hop + k)]


# --------------------------------------------------------------------------- what each package holds

# An item: (group, name, audio: Path | bytes, license).  Group = speaker (speech) or category (noise).

def _speech_items(name: str, root: Path):
    lic = PACKAGES[name].license
    if name == "tuxpaint-stamps-default":
        for p in sorted(root.rglob("*_desc*.ogg")):
            m = re.search(r"_desc(?:_([A-Za-z]+))?\.ogg$", p.name)
            if m:
                yield f"tuxpaint-{(m.group(1) or 'en').lower()}", p.stem, p, lic
    elif name == "klettres-data":
        for p in sorted(root.glob("usr/share/klettres/*/*/*.ogg")):
            yield f"klettres-{p.parts[-3].lower()}", f"{p.parts[-2]}-{p.stem}", p, lic
    elif name.startswith("asterisk-prompt-"):
        voice = name.replace("asterisk-prompt-", "").replace("-wav", "")
        for p in sorted(root.glob("usr/share/asterisk/sounds/**/*")):
            if p.suffix in (".gsm", ".wav") and "silence" not in p.parts and not re.search(r"beep|tone", p.name):
                rel = p.relative_to(root / "usr/share/asterisk/sounds")
                yield f"asterisk-{voice}", "-".join(rel.with_suffix("").parts[1:]), p, lic
    elif name == "qabcs-data":
        for p in sorted(root.glob("usr/share/qabcs/abcs/*/sounds/*/*.ogg")):
            lang = p.parts[-4]
            if lang != "all":
                yield f"qabcs-{lang}", f"{p.parts[-2]}-{p.stem}", p, lic


SONIC_PI_NOISE = ("ambi_drone", "ambi_glass_hum", "ambi_haunted_hum", "ambi_soft_buzz", "ambi_sauna",
                  "ambi_dark_woosh", "ambi_lunar_land", "ambi_swoosh", "loop_industrial", "loop_mehackit*",
                  "misc_*", "vinyl_*", "ambi_choir", "ambi_glass_rub", "ambi_piano", "loop_3d_printer",
                  "loop_electric", "loop_mika", "loop_garzul", "loop_safari", "loop_tabla", "loop_weirdo")


def _noise_items(name: str, root: Path):
    lic = PACKAGES[name].license
    if name == "sonic-pi-samples":
        for p in sorted(root.glob("usr/share/sonic-pi/samples/*.flac")):
            if any(fnmatch.fnmatch(p.stem, pat) for pat in SONIC_PI_NOISE):
                cat = "machine" if re.search(r"hum|buzz|drone|industrial|printer|electric", p.stem) else "ambience"
                yield f"sonicpi-{cat}", p.stem, p, lic
    elif name == "openttd-opensfx":
        data = (root / "usr/share/games/openttd/baseset/opensfx/opensfx.cat").read_bytes()
        for i, m in enumerate(re.finditer(rb"RIFF", data)):
            size = int.from_bytes(data[m.start() + 4: m.start() + 8], "little") + 8
            yield "openttd", f"sfx{i:03d}", data[m.start(): m.start() + size], lic
    elif name == "bucklespring-data":
        for p in sorted(root.rglob("*.wav")):
            yield "keyboard-keys", p.stem, p, lic
    elif name == "scorched3d-data":
        skip = r"beep|text|camera|activate|extralife|fight4life|lockon|teleport|play|turn|elevate|power"
        for p in sorted(root.rglob("*.wav")):
            if not re.search(skip, p.stem):
                yield "scorched3d", f"{p.parent.name}-{p.stem}", p, lic
    elif name == "openarena-data":
        with zipfile.ZipFile(root / "usr/share/games/openarena/baseoa/pak0.pk3") as z:
            for n in sorted(z.namelist()):
                if n.startswith("sound/world/") and n.endswith(".wav"):
                    yield "openarena-world", Path(n).stem, z.read(n), lic
    elif name == "megaglest-data":
        base = root / "usr/share/games/megaglest"
        for p in sorted(list(base.glob("tilesets/*/sounds/*")) + list(base.glob("data/core/water_sounds/*"))):
            if p.suffix in (".wav", ".ogg"):
                yield "megaglest-ambience", f"{p.parent.parent.name}-{p.stem}", p, lic
    elif name == "qabcs-data":
        for p in sorted(root.glob("usr/share/qabcs/abcs/all/noises/*.ogg")):
            yield "qabcs-noises", p.stem, p, lic


def items(name: str, root: Path, kind: str):
    return _speech_items(name, root) if kind == "speech" else _noise_items(name, root)


def load_items(names, cache: Path, kind: str, *, min_s: float):
    """{group: [(name, 48 kHz audio, native rate, licence, package)]} at the pool's levels
    (speech -26 dBFS active level, trimmed; noise -30 dBFS mean level)."""
    out: dict[str, list] = {}
    for pkg in names:
        root = fetch(pkg, cache)
        for group, nm, audio, lic in items(pkg, root, kind):
            try:
                x, sr = decode(audio, nm if isinstance(audio, bytes) else "")
            except Exception as exc:  # a file the decoder rejects is reported and left out, never half-read
                print(f"  skipped {pkg}:{nm}: {type(exc).__name__}: {exc}", file=sys.stderr)
                continue
            if kind == "speech":
                x = trim_silence(x, sr)
            if len(x) < min_s * sr or not np.all(np.isfinite(x)) or np.max(np.abs(x)) < 1e-4:
                continue
            y = to_rate(x, sr)
            level = active_level_db(y) if kind == "speech" else mean_level_db(y)
            y = y * 10 ** (((-26.0 if kind == "speech" else -30.0) - level) / 20)
            out.setdefault(group, []).append((nm, y.astype(np.float32), sr, lic, pkg))
    return out


def _keyboard_typing(keys: list[np.ndarray], rng, n: int) -> np.ndarray:
    """Typing: key sounds at word-like bursts (4-9 strokes/s, pauses between words)."""
    x = np.zeros(n, np.float32)
    t = int(rng.uniform(0, 0.3) * SR)
    while t < n:
        for _ in range(rng.integers(2, 9)):
            k = keys[rng.integers(len(keys))]
            e = min(n, t + len(k))
            if t >= n:
                break
            x[t:e] += k[: e - t] * rng.uniform(0.4, 1.0)
            t += int(SR / rng.uniform(4, 9))
        t += int(rng.uniform(0.2, 1.2) * SR)
    return x


# --------------------------------------------------------------------------- pool


def _write_flac(path: Path, x: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.flac")
    sf.write(tmp, np.clip(x, -1, 1), SR, subtype="PCM_16")
    os.replace(tmp, path)


def build_pool(dest: Path, cache: Path, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    train = [n for n, s in PACKAGES.items() if s.role == "train"]
    summary = {"speech_minutes": {}, "noise_minutes": {}}
    for kind in ("speech", "noise"):
        groups = load_items([n for n in train if kind in PACKAGES[n].kind], cache, kind,
                            min_s=0.3 if kind == "speech" else 0.02)
        if "keyboard-keys" in groups:  # single key strokes become 10 s of typing
            keys = [y for _, y, *_ in groups.pop("keyboard-keys")]
            lic = PACKAGES["bucklespring-data"].license
            groups["keyboard"] = [(f"typing{i:02d}", _keyboard_typing(keys, rng, 10 * SR), SR, lic,
                                   "bucklespring-data") for i in range(30)]
            for i, (nm, y, *rest) in enumerate(groups["keyboard"]):
                groups["keyboard"][i] = (nm, y * 10 ** ((-30 - mean_level_db(y)) / 20), *rest)
        index = []
        for group, rows in sorted(groups.items()):
            for nm, y, native, lic, pkg in rows:
                rel = f"{group}/{nm}.flac"
                _write_flac(dest / kind / rel, y)
                row = {"path": rel, "package": pkg, "version": PACKAGES[pkg].version, "license": lic,
                       "native_sr": native, "bandwidth_hz": round(bandwidth_hz(y, SR)),
                       "duration_s": round(len(y) / SR, 3)}
                row["speaker" if kind == "speech" else "category"] = group
                index.append(row)
            summary[f"{kind}_minutes"][group] = round(sum(len(r[1]) for r in rows) / SR / 60, 2)
        (dest / kind / "index.json").write_text(json.dumps(index, indent=0) + "\n")
    _write_licenses(dest, train, "training pool (extra)")
    manifest = {"packages": {n: vars(PACKAGES[n]) for n in train}, **summary, "seed": seed}
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return summary


def _write_licenses(dest: Path, names, what: str) -> None:
    lines = [f"# Licences of the {what}", "", "| package | version | licence |", "|---|---|---|"]
    lines += [f"| {n} | {PACKAGES[n].version} | {PACKAGES[n].license} |" for n in names]
    lines += ["", "Each file's licence is in index.json / manifest.csv. Do not redistribute the audio without "
              "meeting each licence's duties (attribution, share-alike, source offer)."]
    (dest / "LICENSES.md").write_text("\n".join(lines) + "\n")


# --------------------------------------------------------------------------- generalization set

GEN_SNRS = (-5, 0, 5, 10, 15, 20)


def _utterance(rng, rows, n):
    """Words/prompts of one speaker laid end to end with 0.15-0.7 s pauses, starting after a
    0.3-1.0 s noise-only lead-in, up to ``n`` samples; (audio, sources)."""
    x = np.zeros(n, np.float32)
    t, used = int(rng.uniform(0.3, 1.0) * SR), []
    while True:
        nm, y, *_ = rows[rng.integers(len(rows))]
        if t + len(y) > n - int(0.2 * SR):
            break
        x[t: t + len(y)] = y
        used.append(nm)
        t += len(y) + int(rng.uniform(0.15, 0.7) * SR)
    return x, used


def _noise_clip(rng, rows, n):
    """Recordings of one category joined (each from a random offset) until ``n`` samples are filled."""
    parts, used = [], []
    total = 0
    while total < n:
        nm, y, *_ = rows[rng.integers(len(rows))]
        s = rng.integers(0, max(1, len(y) - n)) if len(y) > n else 0
        seg = y[s: s + n - total]
        parts.append(seg)
        used.append(nm)
        total += len(seg)
    return np.concatenate(parts)[:n], used


def build_genset(dest: Path, cache: Path, *, seed: int = 0, per_snr: int = 24, n_clean: int = 8,
                 n_noise: int = 8, seconds: float = 8.0) -> int:
    gen = [n for n, s in PACKAGES.items() if s.role == "gen"]
    speech = load_items([n for n in gen if "speech" in PACKAGES[n].kind], cache, "speech", min_s=0.3)
    noise = load_items([n for n in gen if "noise" in PACKAGES[n].kind], cache, "noise", min_s=0.05)
    speech = {k: v for k, v in speech.items() if sum(len(r[1]) for r in v) > 60 * SR}  # >= 1 min per voice
    rng = np.random.default_rng(seed)
    spk, cats = sorted(speech), sorted(noise)
    n = int(seconds * SR)
    rows = []
    plan = [("noisy", snr) for snr in GEN_SNRS for _ in range(per_snr)]
    plan += [("clean-only", None)] * n_clean + [("noise-only", None)] * n_noise
    counts = {"noisy": 0, "clean-only": 0, "noise-only": 0}
    for i, (kind, snr) in enumerate(plan):
        cid = {"noisy": "n", "clean-only": "c", "noise-only": "z"}[kind] + f"{counts[kind]:03d}"
        counts[kind] += 1
        speaker, cat = spk[i % len(spk)], cats[(i // len(spk) + i) % len(cats)]
        clean = used_s = None
        if kind != "noise-only":
            clean, used_s = _utterance(rng, speech[speaker], n)
        noise_sig, used_n = (None, None) if kind == "clean-only" else _noise_clip(rng, noise[cat], n)
        if kind == "noisy":
            noise_sig = noise_sig * 10 ** ((-26.0 - snr - mean_level_db(noise_sig)) / 20)
            noisy = clean + noise_sig
        elif kind == "clean-only":
            noisy = clean.copy()
        else:
            level = rng.uniform(-46, -21)
            noisy = noise_sig * 10 ** ((level - mean_level_db(noise_sig)) / 20)
        peak = float(np.max(np.abs(noisy)))
        g = min(1.0, 0.97 / peak) if peak > 0 else 1.0
        noisy = noisy * g
        _write_flac(dest / "noisy" / f"{cid}.flac", noisy)
        if clean is not None:
            _write_flac(dest / "clean" / f"{cid}.flac", clean * g)
        sp_rows = speech.get(speaker, [])
        rows.append({"id": cid, "kind": kind, "clean": f"clean/{cid}.flac" if clean is not None else "",
                     "noisy": f"noisy/{cid}.flac", "snr_db": "" if snr is None else snr,
                     "anti_clip_gain_db": round(20 * math.log10(g), 2),
                     "speaker": speaker if clean is not None else "",
                     "speech_package": sp_rows[0][4] if clean is not None else "",
                     "speech_license": sp_rows[0][3] if clean is not None else "",
                     "speech_source": ";".join(used_s) if used_s else "",
                     "noise_category": cat if noise_sig is not None else "",
                     "noise_package": noise[cat][0][4] if noise_sig is not None else "",
                     "noise_license": noise[cat][0][3] if noise_sig is not None else "",
                     "noise_source": ";".join(used_n) if used_n else ""})
    with open(dest / "manifest.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    _write_licenses(dest, gen, "generalization set")
    info = {"packages": {k: vars(PACKAGES[k]) for k in gen}, "seed": seed, "clips": len(rows),
            "speakers": {k: round(sum(len(r[1]) for r in v) / SR / 60, 2) for k, v in speech.items()},
            "noise_categories": {k: round(sum(len(r[1]) for r in v) / SR / 60, 2) for k, v in noise.items()},
            "levels": "speech -26 dBFS active level; SNR = speech active level - noise mean level; "
                      "noise-only -46..-21 dBFS", "seconds": seconds}
    (dest / "manifest.json").write_text(json.dumps(info, indent=1) + "\n")
    return len(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mediacore.train.sources", description=__doc__.split("\n\n")[0])
    ap.add_argument("job", choices=["pool", "genset", "check"])
    ap.add_argument("dest", nargs="?")
    ap.add_argument("--cache", default=os.environ.get("CORPUS_CACHE", str(Path.home() / ".cache/corpus-build")),
                    help="where .debs and unpacked packages are kept")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    bad = split_is_clean()
    if bad:
        print("\n".join(bad), file=sys.stderr)
        return 1
    if args.job == "check":
        print("split ok: " + ", ".join(f"{n} ({s.role})" for n, s in PACKAGES.items()))
        return 0
    if not args.dest:
        ap.error(f"{args.job} needs DEST")
    dest, cache = Path(args.dest), Path(args.cache)
    dest.mkdir(parents=True, exist_ok=True)
    if args.job == "pool":
        print(json.dumps(build_pool(dest, cache, args.seed), indent=1))
    else:
        print(f"{build_genset(dest, cache, seed=args.seed)} clips in {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
