"""Training recipe for the neural denoiser (optional: needs torch, ``pip install 'mediacore[train]'``).

Entry point: ``python -m mediacore.train --pool POOL --out DIR --minutes M`` (see :mod:`.recipe`).
"""
