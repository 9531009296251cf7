"""AsyncProcessor: await a stream's processing without blocking the host's event loop.

Our kernels (numba ``nogil`` and onnxruntime) release the GIL, so running
them on worker threads lets one event loop serve many streams on several
cores while it keeps handling network I/O.  Calls of one stream are
serialised (an ``asyncio.Lock`` per stream), so frames never overtake each
other; different streams run in parallel on the shared executor.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

import numpy as np

from ..errors import ParameterError
from ._stream import StreamProcessor

_shared_executor: ThreadPoolExecutor | None = None


def shared_executor() -> ThreadPoolExecutor:
    """The process-wide worker pool (one thread per core) used when ``offload=True``."""
    global _shared_executor
    if _shared_executor is None:
        _shared_executor = ThreadPoolExecutor(max_workers=os.cpu_count() or 1,
                                              thread_name_prefix="mediacore")
    return _shared_executor


class AsyncProcessor:
    """Asynchronous front of a :class:`StreamProcessor` (one per stream).

    Parameters
    ----------
    processor : StreamProcessor, optional
        The stream to run; default ``StreamProcessor(**chain_options)``.
    offload : bool or concurrent.futures.Executor, default True
        ``True``: run each frame on :func:`shared_executor`; an Executor: run
        there; ``False``: run inline on the event loop (lowest overhead, for
        hosts that already run us on a thread of their own).
    **chain_options
        Passed to :func:`~mediacore.default_chain` when no processor is given.
    """

    def __init__(self, processor: StreamProcessor | None = None, *, offload: bool | Executor = True,
                 **chain_options: Any) -> None:
        if processor is not None and chain_options:
            raise ParameterError(f"AsyncProcessor: pass either a processor or chain options, got both "
                                 f"({sorted(chain_options)})")
        if not isinstance(offload, (bool, Executor)):
            raise ParameterError(f"AsyncProcessor: expected offload as a bool or an Executor, "
                                 f"got {type(offload).__name__}")
        self.processor = processor or StreamProcessor(name="AsyncProcessor", **chain_options)
        self.offload = offload
        self._lock: asyncio.Lock | None = None

    @property
    def stats(self) -> dict[str, int]:
        return self.processor.stats

    async def process(self, samples: Any, *, sample_rate: int) -> np.ndarray:
        """Await :meth:`StreamProcessor.process`."""
        return await self._call(self.processor.process, samples, sample_rate=sample_rate)

    async def process_interleaved(self, data: Any, *, sample_rate: int, num_channels: int) -> np.ndarray:
        """Await :meth:`StreamProcessor.process_interleaved` (int16 interleaved in and out)."""
        return await self._call(self.processor.process_interleaved, data, sample_rate=sample_rate,
                                num_channels=num_channels)

    def reset(self) -> None:
        self.processor.reset()

    async def _call(self, fn, *args: Any, **kwargs: Any) -> Any:
        if self.offload is False:
            return fn(*args, **kwargs)
        if self._lock is None:
            self._lock = asyncio.Lock()
        executor = shared_executor() if self.offload is True else self.offload
        async with self._lock:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(executor, lambda: fn(*args, **kwargs))
