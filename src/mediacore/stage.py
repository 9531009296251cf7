"""Stage: the contract every processing block follows.

A stage turns blocks of float32 samples, shape (channels, samples), into
blocks of float32 samples.  It declares

* ``sample_rate`` (input) and ``output_sample_rate``,
* ``num_channels`` (``None`` until the first block fixes it),
* ``latency``: how many output samples the output lags the input,
* ``block_size``: the input block length its kernel needs, or ``None``.

The base class owns everything that is the same for all stages: input
validation, the FIFO that reblocks arbitrary chunks into ``block_size``
blocks, sample accounting, ``flush`` (feed silence until the declared
latency has come out), the one-shot ``run`` that trims the latency, and
``reset``.  Subclasses implement ``_allocate`` (build the state for a
channel count) and ``_process_blocks`` (run the kernel on whole blocks).

Channels are independent streams for every stage in this library unless the
stage says otherwise, so a batch of N streams is one (N, samples) block.
The layout is (channels, samples): a block that is obviously (samples,
channels) is refused with a hint to transpose it (the rule is
:func:`mediacore.frame.check_layout`; a batch of more than 8 streams in
chunks shorter than the stream count declares ``num_channels``).

Output shapes follow the input: after 1-D input ``process``, ``flush`` and
``run`` return 1-D, otherwise (channels, samples).  A rejected block changes
nothing: the next good block is processed as if it had never been offered.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .errors import FormatError, ParameterError
from .frame import AudioFrame, as_float_block, check_layout


class Stage:
    """Base class of all stages (see the module docstring for the contract)."""

    #: input block length the kernel needs; ``None`` means any length
    block_size: int | None = None

    def __init__(self, *, sample_rate: int, num_channels: int | None = None,
                 output_sample_rate: int | None = None) -> None:
        self._sample_rate = check_sample_rate(self.name, sample_rate, "sample_rate")
        self._output_sample_rate = (self._sample_rate if output_sample_rate is None
                                    else check_sample_rate(self.name, output_sample_rate, "output_sample_rate"))
        if num_channels is not None and (int(num_channels) != num_channels or num_channels < 1):
            raise ParameterError(f"{self.name}: expected num_channels >= 1 or None, got {num_channels!r}")
        self._declared_channels = None if num_channels is None else int(num_channels)
        self.reset()

    # ----------------------------------------------------------- declared facts
    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def output_sample_rate(self) -> int:
        return self._output_sample_rate

    @property
    def num_channels(self) -> int | None:
        return self._channels

    @property
    def latency(self) -> int:
        """Output delay in samples at ``output_sample_rate``."""
        return 0

    # ------------------------------------------------------------ subclass hooks
    def _allocate(self, num_channels: int) -> None:
        """Build all mutable state for ``num_channels`` independent channels."""

    def _process_blocks(self, x: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
        """Process whole blocks; ``x`` is float32 (channels, k * block_size)."""
        raise NotImplementedError

    def _params(self) -> dict[str, Any]:
        """Parameters shown by ``repr``."""
        return {}

    # -------------------------------------------------------------- public API
    def reset(self) -> None:
        """Forget the stream: drop all state.  Parameters are kept."""
        self._channels = self._declared_channels
        self._fifo: np.ndarray | None = None
        self._n_in = 0
        self._n_out = 0
        self._one_d = False  # the last process() input was 1-D: flush() answers in 1-D too
        if self._channels is not None:
            self._allocate(self._channels)

    def process(self, samples: Any) -> np.ndarray:
        """Process a chunk of any length; return the output that is ready.

        Accepts float32/float64/int16/int32, shape (samples,) or (channels,
        samples).  The result is float32 with the same number of dimensions.
        When the chunk length is a multiple of ``block_size`` the output has
        exactly as many samples as the input (times the rate ratio).
        """
        x = as_float_block(samples, self.name)
        y = self._push(x, {})
        self._one_d = np.ndim(samples) == 1
        return y[0] if self._one_d else y

    def process_frame(self, frame: AudioFrame) -> AudioFrame:
        """Process an :class:`AudioFrame`; side results are added to a copy of its meta."""
        if frame.sample_rate != self._sample_rate:
            raise FormatError(f"{self.name}: expected sample_rate {self._sample_rate}, got {frame.sample_rate}")
        meta = dict(frame.meta)
        y = self._push(frame.samples, meta)
        self._one_d = False
        pts = None if frame.pts is None else round(frame.pts * self._output_sample_rate / self._sample_rate)
        return AudioFrame(y, self._output_sample_rate, pts, meta)

    def flush(self) -> np.ndarray:
        """End the stream: return the remaining output and reset.

        After ``flush`` the stage has produced exactly
        ``ceil(n_in * output_sample_rate / sample_rate) + latency`` samples in
        all, so the whole input has come out.  The result is 1-D when the
        last :meth:`process` input was 1-D, as ``process`` returned it, and
        (channels, samples) otherwise.
        """
        one_d = self._one_d
        y = self._flush()
        return y[0] if one_d and y.shape[0] == 1 else y

    def _flush(self) -> np.ndarray:
        """``flush`` in (channels, samples); subclasses that keep end-of-stream results extend this."""
        if self._channels is None:
            self.reset()
            return np.zeros((self._declared_channels or 1, 0), np.float32)
        target = self.expected_output(self._n_in) + self.latency
        outs = []
        guard = 0
        while self._n_out < target:
            if self.block_size:
                pending = 0 if self._fifo is None else self._fifo.shape[1]
                n_zeros = self.block_size - pending
            else:
                n_zeros = max(1, math.ceil((target - self._n_out) * self._sample_rate / self._output_sample_rate))
            n_in = self._n_in
            outs.append(self._push(np.zeros((self._channels, n_zeros), np.float32), {}))
            self._n_in = n_in  # silence fed to drain the stage is not input
            guard += 1
            if guard > 100000:  # a stage that never emits is a bug, not a hang
                raise RuntimeError(f"{self.name}: flush made no progress")
        y = np.concatenate(outs, axis=1) if outs else np.zeros((self._channels, 0), np.float32)
        y = y[:, : y.shape[1] - (self._n_out - target)]
        self.reset()
        return y

    def run(self, samples: Any) -> np.ndarray:
        """One-shot: reset, process everything, flush, and trim the latency.

        The output lines up with the input sample for sample and has
        ``ceil(n * output_sample_rate / sample_rate)`` samples.
        """
        x = as_float_block(samples, self.name)
        self.reset()
        y = np.concatenate([self._push(x, {}), self._flush()], axis=1)
        lat = self.latency
        y = y[:, lat: lat + self.expected_output(x.shape[1])]
        return y[0] if np.ndim(samples) == 1 else y

    def expected_output(self, n_in: int) -> int:
        """Samples out (latency aside) for ``n_in`` samples in."""
        return -((-n_in * self._output_sample_rate) // self._sample_rate)

    def __repr__(self) -> str:
        params = {"sample_rate": self._sample_rate, **self._params()}
        if self._output_sample_rate != self._sample_rate:
            params["output_sample_rate"] = self._output_sample_rate
        if self._declared_channels is not None:
            params["num_channels"] = self._declared_channels
        return f"{self.name}({', '.join(f'{k}={v!r}' for k, v in params.items())})"

    # --------------------------------------------------------------- internals
    def _push(self, x: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
        """Validated float32 (channels, n) in; output that is ready out.

        Every block a stage takes passes here, so this is where the channel
        axis is checked (before any state changes: a refused block leaves
        the stream as it was)."""
        if self._channels is None and x.shape[1] == 0:
            return x  # an empty first chunk must not fix the channel count
        check_layout(self.name, x.shape, self._channels)
        if self._channels is None:
            self._fix_channels(x.shape[0])
        self._n_in += x.shape[1]
        bs = self.block_size
        if bs:
            if self._fifo is not None and self._fifo.shape[1]:
                x = np.concatenate([self._fifo, x], axis=1)
            n_whole = (x.shape[1] // bs) * bs
            if n_whole != x.shape[1]:
                self._fifo = x[:, n_whole:].copy()
                x = x[:, :n_whole]
            else:
                self._fifo = None
            if n_whole == 0:
                return np.zeros((self._channels, 0), np.float32)
        y = self._process_blocks(np.ascontiguousarray(x), meta)
        self._n_out += y.shape[1]
        return y

    def _fix_channels(self, num_channels: int) -> None:
        """Fix the stream's channel count and build the state for it (all or nothing)."""
        self._channels = num_channels
        try:
            self._allocate(num_channels)
        except BaseException:
            self.reset()
            raise


def check_sample_rate(owner: str, rate: Any, what: str = "sample_rate") -> int:
    """Raise a ParameterError naming the stage unless ``rate`` is a positive integer."""
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or rate <= 0:
        raise ParameterError(f"{owner}: expected {what} as a positive integer in Hz, got {rate!r}")
    return int(rate)


def check_choice(owner: str, what: str, value: Any, allowed: tuple) -> Any:
    """Raise a ParameterError naming the stage unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ParameterError(f"{owner}: expected {what} in {allowed}, got {value!r}")
    return value


def check_range(owner: str, what: str, value: Any, lo: float, hi: float) -> float:
    """Raise a ParameterError naming the stage unless lo <= value <= hi."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{owner}: expected {what} as a number in [{lo}, {hi}], got {value!r}") from None
    if not (lo <= v <= hi):
        raise ParameterError(f"{owner}: expected {what} in [{lo}, {hi}], got {value!r}")
    return v
