"""Seconds-long smoke training of the neural denoiser recipe (needs torch: mediacore[train]).

Builds a tiny pool from the bundled example (clean speech) and generated
noise in a temporary folder, trains a few steps through ``mediacore train``,
and checks that the streaming ONNX export matches the torch model
(tests/test_train.py runs the same in CI).

    python benchmarks/train_smoke.py [--steps 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args(argv)
    import torch

    from mediacore.cli import main as cli
    from mediacore.train.export import load_model
    from mediacore.train.smoke import SMOKE_ARGS, make_example_pool, streaming_onnx_gains

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pool = make_example_pool(tmp / "pool")
        rc = cli(["train", "--pool", str(pool), "--out", str(tmp / "out"), "--steps", str(args.steps), *SMOKE_ARGS])
        if rc:
            return rc
        model = load_model(str(tmp / "out" / "model.pt"))
        feats = np.random.default_rng(1).normal(-12, 3, (3, 50, model.n_bands)).astype(np.float32)
        g_onnx = streaming_onnx_gains(tmp / "out" / "model.onnx", feats, model.layers, model.hidden)
        with torch.no_grad():
            g_torch = model(torch.from_numpy(feats), torch.zeros(model.layers, 3, model.hidden))[0].numpy()
        err = float(np.abs(g_onnx - g_torch).max())
        print(f"streaming ONNX vs torch: max |gain diff| = {err:.2e}")
        return 0 if err < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
