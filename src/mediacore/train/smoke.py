"""A seconds-long training run on a tiny pool made from the bundled example (CI and quick checks)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import numpy as np
import soundfile as sf

#: arguments of the smoke run: a tiny model, a few short batches
SMOKE_ARGS = ["--batch", "4", "--seconds", "1.0", "--hidden", "32", "--stat-batches", "1"]


def make_example_pool(root: Path) -> Path:
    """A pool in the build_train.sh layout: the bundled clean example as one speaker (two
    files) and 3 s of seeded white noise as one category."""
    root = Path(root)
    x, sr = sf.read(str(files("mediacore") / "_assets" / "example_clean.flac"), dtype="float32")
    (root / "speech" / "example").mkdir(parents=True)
    (root / "noise" / "white").mkdir(parents=True)
    half = len(x) // 2
    sf.write(str(root / "speech" / "example" / "a.flac"), x[:half], sr)
    sf.write(str(root / "speech" / "example" / "b.flac"), x[half:], sr)
    rng = np.random.default_rng(0)
    sf.write(str(root / "noise" / "white" / "w.flac"), (0.03 * rng.standard_normal(sr * 3)).astype(np.float32), sr)
    return root


def streaming_onnx_gains(onnx_path: str | Path, features: np.ndarray, layers: int, hidden: int) -> np.ndarray:
    """Run the exported model one 10 ms frame per call, carrying the GRU state, as the runtime does."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    h = np.zeros((layers, features.shape[0], hidden), np.float32)
    out = []
    for t in range(features.shape[1]):
        g, _, h = sess.run(None, {"features": features[:, t:t + 1], "h_in": h})
        out.append(g)
    return np.concatenate(out, axis=1)
