"""Neural noise suppression: numba features/synthesis around a small streaming ONNX GRU model.

``NeuralBackend`` plugs into :class:`mediacore.stages.Denoise`::

    from mediacore.stages.denoise import register_backend
    from mediacore.neural import NeuralBackend
    register_backend("neural", NeuralBackend)
"""

from .backend import NeuralBackend

__all__ = ["NeuralBackend"]
