"""Noise-suppression benchmarks: dev-corpus loading, quality metrics, peer systems.

Metrics and peers need optional packages: ``pip install 'mediacore[bench]'``
(PESQ, STOI, DNSMOS) and ``pip install 'mediacore[peers]'`` (RNNoise, WebRTC NS).
They are imported on first use, so importing this package is cheap.
"""

from mediacore.bench.corpus import KINDS, Clip, load_audio, load_corpus
from mediacore.bench.metrics import (
    align,
    dnsmos,
    estimate_delay,
    estoi,
    level_dbfs,
    pesq_nb,
    pesq_wb,
    score_clip,
    si_sdr,
    stoi,
    to_16k,
)
from mediacore.bench.peers import PEERS, get_peer

__all__ = [
    "KINDS",
    "Clip",
    "load_audio",
    "load_corpus",
    "align",
    "dnsmos",
    "estimate_delay",
    "estoi",
    "level_dbfs",
    "pesq_nb",
    "pesq_wb",
    "score_clip",
    "si_sdr",
    "stoi",
    "to_16k",
    "PEERS",
    "get_peer",
]
