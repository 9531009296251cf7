"""Export a trained state dict to the streaming ONNX model and print its sha256.

    python -m mediacore.train.export --state DIR/model.pt --out src/mediacore/_assets/denoise_neural.onnx

The look-ahead comes from ``--lookahead`` or else from the run's config.json beside the state.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import torch

from .model import BandGRU, export_onnx


def load_model(state_path: str) -> BandGRU:
    sd = torch.load(state_path, map_location="cpu")
    hidden = sd["inp.weight"].shape[0]
    layers = sum(1 for k in sd if k.startswith("gru.weight_ih_l"))
    df_bins, df_taps = (int(v) for v in sd["df_shape"]) if "df_shape" in sd else (0, 3)
    model = BandGRU(hidden=hidden, layers=layers, fine_bins="inp_fine.weight" in sd, df_bins=df_bins, df_taps=df_taps)
    model.load_state_dict(sd)
    return model.eval()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mediacore.train.export")
    ap.add_argument("--state", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--lookahead", type=int, default=None, help="frames (default: the run's config.json, else 0)")
    args = ap.parse_args(argv)
    lookahead = args.lookahead
    if lookahead is None:
        conf = Path(args.state).with_name("config.json")
        lookahead = json.loads(conf.read_text())["config"].get("lookahead", 0) if conf.exists() else 0
    export_onnx(load_model(args.state), args.out, lookahead=lookahead)
    digest = hashlib.sha256(open(args.out, "rb").read()).hexdigest()
    print(digest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
