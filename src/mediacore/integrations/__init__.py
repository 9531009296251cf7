"""Adapters that plug mediacore pipelines into conferencing stacks.

* :class:`StreamProcessor` / :class:`AsyncProcessor` - host-neutral: one
  frame out per frame in, any rate and channel count, optional thread offload.
* :mod:`mediacore.integrations.livekit` - ``livekit.rtc`` FrameProcessor.
* :mod:`mediacore.integrations.pipecat` - pipecat audio filter and VAD analyzer.
* :mod:`mediacore.integrations.aiortc` - aiortc MediaStreamTrack wrapper.
* :mod:`mediacore.integrations.rtp` - Opus RTP relay (``mediacore relay``).

The host packages are imported only by their adapter module; install them with
``pip install 'mediacore[integrations]'``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import MissingDependencyError
from ._async import AsyncProcessor, shared_executor
from ._stream import StreamProcessor, chain_factory

__all__ = ["AsyncProcessor", "StreamProcessor", "chain_factory", "require", "shared_executor"]


def require(module: str, adapter: str) -> ModuleType:
    """Import a host package for ``adapter`` or raise MissingDependencyError naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{adapter}: needs the '{module}' package: pip install 'mediacore[integrations]'") from exc
