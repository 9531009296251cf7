"""Run benchmarks/quality_dev.py with the ``neural`` Denoise backend registered.

Until ``mediacore.stages`` registers the backend and ``mediacore.chain``
accepts ``denoise="neural"``, this wrapper does both (in every spawned worker
too: spawn re-imports this main module), then hands over to quality_dev::

    python benchmarks/quality_neural.py --corpus /work/shared/corpus/dev --systems neural,dsp,rnnoise --jobs 2
"""

import os
import sys
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from mediacore import chain  # noqa: E402
from mediacore.neural import NeuralBackend  # noqa: E402
from mediacore.stages.denoise import backend_names, register_backend  # noqa: E402

if "neural" not in backend_names():
    register_backend("neural", NeuralBackend)
if "neural" not in chain.DENOISE_CHOICES:
    chain.DENOISE_CHOICES = (*chain.DENOISE_CHOICES, "neural")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality_dev  # noqa: E402

if __name__ == "__main__":
    sys.exit(quality_dev.main())
