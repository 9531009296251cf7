"""Noise-suppression benchmarks: corpus readers, quality metrics, peer systems, ``mediacore bench``.

``run_bench`` (:mod:`mediacore.bench.runner`) is the ``mediacore bench`` command;
its module docstring documents ``results.json``.

Metrics and peers need optional packages: ``pip install 'mediacore[bench]'``
(PESQ, STOI, DNSMOS) and ``pip install 'mediacore[peers]'`` (RNNoise, WebRTC NS).
They are imported on first use, so importing this package is cheap.
"""

from mediacore.bench.corpus import KINDS, Clip, detect_layout, load_audio, load_corpus, read_corpus
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
from mediacore.bench.runner import run_bench
from mediacore.bench.stats import bootstrap_ci, paired_comparison
from mediacore.bench.systems import align_external, resolve_system

__all__ = [
    "KINDS",
    "Clip",
    "load_audio",
    "load_corpus",
    "read_corpus",
    "detect_layout",
    "run_bench",
    "bootstrap_ci",
    "paired_comparison",
    "resolve_system",
    "align_external",
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
