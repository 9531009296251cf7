"""Export a trained state dict to the streaming ONNX model and print its sha256.

    python -m mediacore.train.export --state DIR/model.pt --out src/mediacore/_assets/denoise_neural.onnx
"""

from __future__ import annotations

import argparse
import hashlib
import sys

import torch

from .model import BandGRU, export_onnx


def load_model(state_path: str) -> BandGRU:
    sd = torch.load(state_path, map_location="cpu")
    hidden = sd["inp.weight"].shape[0]
    layers = sum(1 for k in sd if k.startswith("gru.weight_ih_l"))
    model = BandGRU(hidden=hidden, layers=layers)
    model.load_state_dict(sd)
    return model.eval()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mediacore.train.export")
    ap.add_argument("--state", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    export_onnx(load_model(args.state), args.out)
    digest = hashlib.sha256(open(args.out, "rb").read()).hexdigest()
    print(digest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
