"""A tiny corpus in the dev layout, made from the bundled example, for tests and the notebook.

:func:`make_example_corpus` cuts the bundled clean speech
(``mediacore/_assets/example_clean.flac``, 6 s at 48 kHz, CC-BY-SA-3.0, see
``_assets/ATTRIBUTION.md``) into 3 s pieces and mixes seeded synthetic
noise at given SNRs, and adds a clean-only and a noise-only clip, with a
``manifest.csv`` that :func:`mediacore.bench.corpus.load_corpus` reads.
Nothing is downloaded; a call takes well under a second.
"""

from __future__ import annotations

import csv
from importlib.resources import as_file, files
from pathlib import Path

import numpy as np

__all__ = ["make_example_corpus", "example_audio", "example_speech"]

SR = 48000


def example_audio(kind: str = "clean") -> np.ndarray:
    """The bundled example (``clean`` or ``noisy``), float32 mono at 48 kHz."""
    import soundfile as sf

    with as_file(files("mediacore") / "_assets" / f"example_{kind}.flac") as p:
        x, sr = sf.read(str(p), dtype="float32")
    if sr != SR:
        raise ValueError(f"bundled example_{kind}.flac: expected {SR} Hz, got {sr}")
    return x


def example_speech() -> np.ndarray:
    """The bundled clean example, float32 mono at 48 kHz."""
    return example_audio("clean")


def _noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    w = rng.standard_normal(n)
    if kind == "white":
        return w
    spec = np.fft.rfft(w)
    f = np.maximum(np.arange(spec.size), 1.0)
    if kind == "pink":
        spec /= np.sqrt(f)
    elif kind == "brown":
        spec /= f
    else:
        raise ValueError(f"unknown noise {kind!r}")
    return np.fft.irfft(spec, n)


def _active_level(x: np.ndarray, block: int = 480) -> float:
    """Mean power of the 10 ms blocks within 30 dB of the loudest (a crude speech active level)."""
    n = x.size // block * block
    p = np.mean(x[:n].reshape(-1, block).astype(np.float64) ** 2, axis=1)
    return float(np.mean(p[p > p.max() * 1e-3]))


def make_example_corpus(dest: str | Path, snrs: tuple[float, ...] = (0.0, 10.0), *, clean_only: bool = True,
                        noise_only: bool = True, seconds: float = 3.0, seed: int = 0) -> Path:
    """Write a dev-layout corpus to ``dest`` and return ``dest``.

    One noisy clip per SNR in ``snrs`` (``n00``, ``n01``, ...; speech pieces
    taken in turn from the example, pink and white noise alternating), a
    clean-only clip ``c00`` and a noise-only clip ``z00`` (brown noise at
    -35 dBFS).  Files are 48 kHz mono 16-bit FLAC under ``clean/`` and
    ``noisy/``.
    """
    import soundfile as sf

    dest = Path(dest)
    (dest / "clean").mkdir(parents=True, exist_ok=True)
    (dest / "noisy").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    speech = example_speech()
    n = int(seconds * SR)
    pieces = [speech[i:i + n] for i in range(0, speech.size - n + 1, n)] or [speech[:n]]
    rows = []

    def write(rel: str, x: np.ndarray) -> None:
        sf.write(str(dest / rel), np.clip(x, -1.0, 1.0), SR, subtype="PCM_16")

    for i, snr in enumerate(snrs):
        s = pieces[i % len(pieces)].astype(np.float64)
        v = _noise("pink" if i % 2 == 0 else "white", s.size, rng)
        v *= np.sqrt(_active_level(s) / np.mean(v * v) / 10 ** (snr / 10))
        cid = f"n{i:02d}"
        write(f"clean/{cid}.flac", s)
        write(f"noisy/{cid}.flac", s + v)
        rows.append({"id": cid, "kind": "noisy", "clean": f"clean/{cid}.flac", "noisy": f"noisy/{cid}.flac",
                     "snr_db": f"{snr:g}"})
    if clean_only:
        s = pieces[-1]
        write("clean/c00.flac", s)
        write("noisy/c00.flac", s)
        rows.append({"id": "c00", "kind": "clean-only", "clean": "clean/c00.flac", "noisy": "noisy/c00.flac",
                     "snr_db": ""})
    if noise_only:
        v = _noise("brown", n, rng)
        v *= 10 ** (-35 / 20) / np.sqrt(np.mean(v * v))
        write("noisy/z00.flac", v)
        rows.append({"id": "z00", "kind": "noise-only", "clean": "", "noisy": "noisy/z00.flac", "snr_db": ""})
    with open(dest / "manifest.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["id", "kind", "clean", "noisy", "snr_db"])
        w.writeheader()
        w.writerows(rows)
    return dest
