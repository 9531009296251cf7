"""Seconds-long smoke training of the neural denoiser recipe (for CI; needs torch).

Builds a tiny pool from the bundled example (clean speech) and generated
noise in a temporary folder, trains a few steps, exports ONNX and checks that
the streaming ONNX output matches the torch model.

    python benchmarks/train_smoke.py [--steps 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from importlib.resources import files
from pathlib import Path

import numpy as np
import soundfile as sf


def make_pool(root: Path) -> None:
    x, sr = sf.read(str(files("mediacore") / "_assets" / "example_clean.flac"), dtype="float32")
    (root / "speech" / "example").mkdir(parents=True)
    (root / "noise" / "white").mkdir(parents=True)
    half = len(x) // 2
    sf.write(str(root / "speech" / "example" / "a.flac"), x[:half], sr)
    sf.write(str(root / "speech" / "example" / "b.flac"), x[half:], sr)
    rng = np.random.default_rng(0)
    sf.write(str(root / "noise" / "white" / "w.flac"), (0.03 * rng.standard_normal(sr * 3)).astype(np.float32), sr)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args(argv)
    import onnxruntime as ort
    import torch

    from mediacore.train.model import BandGRU
    from mediacore.train.recipe import train

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_pool(tmp / "pool")
        rc = train(["--pool", str(tmp / "pool"), "--out", str(tmp / "out"), "--steps", str(args.steps),
                    "--batch", "4", "--seconds", "1.0", "--hidden", "32", "--stat-batches", "1"])
        if rc:
            return rc
        model = BandGRU(hidden=32)
        model.load_state_dict(torch.load(tmp / "out" / "model.pt"))
        feats = np.random.default_rng(1).normal(-12, 3, (3, 50, model.n_bands)).astype(np.float32)
        h = np.zeros((model.layers, 3, 32), np.float32)
        sess = ort.InferenceSession(str(tmp / "out" / "model.onnx"))
        hs = h.copy()
        g_onnx = np.concatenate([_step(sess, feats[:, t:t + 1], hs) for t in range(50)], axis=1)
        with torch.no_grad():
            g_torch = model(torch.from_numpy(feats), torch.from_numpy(h))[0].numpy()
        err = float(np.abs(g_onnx - g_torch).max())
        print(f"streaming ONNX vs torch: max |gain diff| = {err:.2e}")
        return 0 if err < 1e-4 else 1


def _step(sess, f, h):
    g, _, h_out = sess.run(None, {"features": f, "h_in": h})
    h[...] = h_out
    return g


if __name__ == "__main__":
    sys.exit(main())
