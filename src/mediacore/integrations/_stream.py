"""StreamProcessor: a pipeline behind a host's frame loop, one frame out per frame in.

Real-time hosts (LiveKit, pipecat, aiortc, an RTP relay) hand over one frame
at a time and expect a frame of the same length back, immediately.  A
:class:`~mediacore.Pipeline` instead reblocks into 10 ms frames and delays its
output by its declared ``latency``.  This module bridges the two:

* **Same length.**  Every call returns exactly as many samples as it was
  given.  The pipeline's output goes into a FIFO; each call takes its length
  from the front.  The stream is therefore delayed by the pipeline's
  ``latency`` (which comes out first as the pipeline's own near-silent
  start) plus ``pad`` samples of leading silence.  ``pad`` is 0 while frames
  are whole multiples of the pipeline frame (10 ms); a frame that is not
  leaves the FIFO short, and the shortfall is inserted as silence at that
  point (counted in ``stats["padded_samples"]``) and kept as extra delay.
  The insertions of a stream add up to less than one pipeline frame
  (10 ms), so odd-sized frames cost at most that much delay, once.
* **Any rate, any channel count.**  A pipeline is built per (sample rate,
  channel count) by ``pipeline_factory`` (default :func:`mediacore.default_chain`,
  which resamples rates other than 16 and 48 kHz internally and back).  When
  a frame arrives with another rate or channel count, the stream restarts on
  the pipeline for the new format: the old pipeline's pending tail (at most
  its latency plus one frame) is discarded (``stats["discarded_samples"]``)
  and the new pipeline's latency comes out as leading silence.  Pipelines
  are kept per format, so switching back does not rebuild the model.
* **int16 in, int16 out.**  Float output is rounded and clipped to int16;
  clipped samples are counted (``stats["clipped_samples"]``) rather than
  wrapped.  The default chain ends in a limiter, so this stays 0 in practice.

Not thread-safe: one instance per stream, called from one thread at a time
(:class:`~mediacore.integrations.AsyncProcessor` serialises calls for you).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..chain import default_chain
from ..errors import FormatError, ParameterError
from ..frame import as_float_block
from ..stage import Stage

PipelineFactory = Callable[[int, int], Stage]


def chain_factory(**chain_options: Any) -> PipelineFactory:
    """A ``pipeline_factory`` building :func:`~mediacore.default_chain` with ``chain_options``."""
    def build(sample_rate: int, num_channels: int) -> Stage:
        return default_chain(sample_rate=sample_rate, num_channels=num_channels, **chain_options)
    return build


class StreamProcessor:
    """Run a pipeline on a stream of host frames; output length == input length.

    Parameters
    ----------
    pipeline_factory : callable (sample_rate, num_channels) -> Stage, optional
        Builds the pipeline for a format.  Default: :func:`~mediacore.default_chain`
        with ``chain_options`` (neural denoiser, VAD-gated AGC).
    name : str
        Adapter name used in error messages.
    **chain_options
        Passed to :func:`~mediacore.default_chain` when no factory is given
        (``denoise="dsp"``, ``agc=False``, ``max_attenuation_db=...``).
    """

    def __init__(self, *, pipeline_factory: PipelineFactory | None = None, name: str = "StreamProcessor",
                 **chain_options: Any) -> None:
        if pipeline_factory is not None and chain_options:
            raise ParameterError(f"{name}: pass either pipeline_factory or chain options, got both "
                                 f"({sorted(chain_options)})")
        if pipeline_factory is not None and not callable(pipeline_factory):
            raise ParameterError(f"{name}: expected pipeline_factory as a callable (sample_rate, num_channels) "
                                 f"-> Stage, got {type(pipeline_factory).__name__}")
        self.name = name
        self._factory = pipeline_factory or chain_factory(**chain_options)
        self._pipelines: dict[tuple[int, int], Stage] = {}
        self.stats: dict[str, int] = {}
        self.reset()

    # ----------------------------------------------------------------- facts
    @property
    def pipeline(self) -> Stage | None:
        """The pipeline of the current format (``None`` before the first frame)."""
        return self._pipe

    @property
    def sample_rate(self) -> int | None:
        return None if self._format is None else self._format[0]

    @property
    def num_channels(self) -> int | None:
        return None if self._format is None else self._format[1]

    @property
    def delay_samples(self) -> int:
        """Current input-to-output delay in samples: pipeline latency + inserted silence."""
        if self._pipe is None:
            return 0
        return self._pipe.latency + self._pad

    @property
    def delay_ms(self) -> float:
        return 0.0 if self._format is None else 1000.0 * self.delay_samples / self._format[0]

    # ------------------------------------------------------------------- API
    def reset(self) -> None:
        """Forget the stream (pipelines are kept for reuse, their state is reset)."""
        self._pipe: Stage | None = None
        self._format: tuple[int, int] | None = None
        self._fifo = np.zeros((1, 0), np.float32)
        self._pad = 0
        for p in self._pipelines.values():
            p.reset()
        self.stats = {"frames": 0, "samples_in": 0, "samples_out": 0, "format_changes": 0,
                      "padded_samples": 0, "discarded_samples": 0, "clipped_samples": 0}

    def warm_up(self, *, sample_rate: int, num_channels: int = 1) -> None:
        """Build and run the pipeline for a format now, so the first real frame does not stall.

        Building the default chain and the first call (loading compiled
        kernels and the model) take a few hundred ms at 48 kHz; a host calling
        us on its event loop would miss its audio deadlines meanwhile.
        """
        fmt = (int(sample_rate), int(num_channels))
        pipe = self._pipeline_for(fmt)
        if pipe is not self._pipe:  # the current stream's pipeline is warm already
            pipe.process(np.zeros((fmt[1], fmt[0] // 10), np.float32))
            pipe.reset()

    def process(self, samples: Any, *, sample_rate: int) -> np.ndarray:
        """Process one frame: (channels, n) or (n,) float/int16 in, the same shape out as float32.

        ``samples`` of any dtype :func:`~mediacore.frame.as_float_block` takes.
        """
        x = as_float_block(samples, self.name)
        y = self._run(x, sample_rate)
        return y[0] if np.ndim(samples) == 1 else y

    def process_interleaved(self, data: Any, *, sample_rate: int, num_channels: int) -> np.ndarray:
        """Process interleaved int16 PCM (bytes, memoryview or int16 array); return int16, same length.

        This is the layout of LiveKit and pipecat frames and of packed s16 PyAV frames.
        """
        if isinstance(data, np.ndarray):
            pcm = data.reshape(-1)
            if pcm.dtype != np.int16:
                raise FormatError(f"{self.name}: expected interleaved int16 samples, got dtype {pcm.dtype}")
        else:
            raw = memoryview(data).cast("B")
            if raw.nbytes % 2:
                raise FormatError(f"{self.name}: expected int16 PCM (an even number of bytes), got {raw.nbytes} bytes")
            pcm = np.frombuffer(raw, dtype=np.int16)
        if num_channels < 1 or pcm.size % num_channels:
            raise FormatError(f"{self.name}: expected a whole number of {num_channels}-channel samples, "
                              f"got {pcm.size} int16 values")
        x = pcm.reshape(-1, num_channels).T
        y = self._run(as_float_block(x, self.name), sample_rate)
        return self.to_int16(y).T.reshape(-1)

    def to_int16(self, y: np.ndarray) -> np.ndarray:
        """float32 [-1, 1) to int16 with rounding; out-of-range samples are clipped and counted."""
        scaled = np.rint(y * 32768.0)
        over = np.count_nonzero((scaled > 32767) | (scaled < -32768))
        if over:
            self.stats["clipped_samples"] += int(over)
            np.clip(scaled, -32768, 32767, out=scaled)
        return scaled.astype(np.int16)

    # ------------------------------------------------------------- internals
    def _run(self, x: np.ndarray, sample_rate: int) -> np.ndarray:
        fmt = (int(sample_rate), x.shape[0])
        if fmt != self._format:
            self._switch(fmt)
        n = x.shape[1]
        self.stats["frames"] += 1
        self.stats["samples_in"] += n
        if n == 0:
            return np.zeros((fmt[1], 0), np.float32)
        y = self._pipe.process(x)
        fifo = np.concatenate([self._fifo, y], axis=1) if self._fifo.shape[1] else y
        if fifo.shape[1] < n:
            # a frame that is not a multiple of the pipeline frame: keep the shortfall as delay
            short = n - fifo.shape[1]
            self._pad += short
            self.stats["padded_samples"] += short
            fifo = np.concatenate([np.zeros((fmt[1], short), np.float32), fifo], axis=1)
        out, self._fifo = fifo[:, :n], fifo[:, n:]
        self.stats["samples_out"] += n
        return out

    def _switch(self, fmt: tuple[int, int]) -> None:
        if self._format is not None:
            self.stats["format_changes"] += 1
            # the input still inside the old pipeline and FIFO never comes out
            self.stats["discarded_samples"] += self.delay_samples
            self._pipe.reset()
        pipe = self._pipeline_for(fmt)
        pipe.reset()
        self._pipe = pipe
        self._format = fmt
        self._fifo = np.zeros((fmt[1], 0), np.float32)
        self._pad = 0

    def _pipeline_for(self, fmt: tuple[int, int]) -> Stage:
        """The cached pipeline of a format, built on first use."""
        pipe = self._pipelines.get(fmt)
        if pipe is None:
            rate, channels = fmt
            if rate <= 0 or channels <= 0:
                raise FormatError(f"{self.name}: expected a positive sample_rate and channel count, "
                                  f"got {rate} Hz, {channels} channel(s)")
            pipe = self._factory(rate, channels)
            if not isinstance(pipe, Stage):
                raise ParameterError(f"{self.name}: pipeline_factory must return a Stage, got {type(pipe).__name__}")
            if pipe.sample_rate != rate or pipe.output_sample_rate != rate:
                raise FormatError(f"{self.name}: pipeline_factory({rate}, {channels}) must take and give "
                                  f"{rate} Hz, got {pipe.sample_rate} Hz in, {pipe.output_sample_rate} Hz out")
            self._pipelines[fmt] = pipe
        return pipe


class StreamFacts:
    """What every framework adapter reports about the :class:`StreamProcessor` it owns as ``_stream``."""

    _stream: StreamProcessor

    @property
    def stats(self) -> dict[str, int]:
        return self._stream.stats

    @property
    def delay_ms(self) -> float:
        return self._stream.delay_ms
