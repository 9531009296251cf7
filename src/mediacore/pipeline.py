"""Pipeline: a chain of stages that is itself a stage."""

from __future__ import annotations

from fractions import Fraction
from math import gcd, lcm
from typing import Any, Iterable

import numpy as np

from .errors import FormatError, ParameterError
from .stage import Stage


class Pipeline(Stage):
    """Run stages in order, one stream (or a batch of streams) at a time.

    The pipeline checks at construction that each stage's input rate is the
    previous stage's output rate and that fixed channel counts agree.  It
    reblocks its input into frames that every stage can take whole (10 ms
    at all supported rates, 20 ms when 22.05 kHz is in the chain), so the
    stages never buffer, side results in ``meta`` line up block by block,
    and the output does not depend on how the input was chunked.

    ``latency`` is the sum of the stages' latencies, in samples at the
    output rate.  ``run`` compensates it, so offline output lines up with the
    input sample for sample.

    Parameters
    ----------
    stages : iterable of Stage
    num_channels : int, optional
        Fix the channel (stream) count; otherwise the first block sets it.
    """

    def __init__(self, stages: Iterable[Stage], *, num_channels: int | None = None) -> None:
        self.stages = list(stages)
        if not self.stages:
            raise ParameterError("Pipeline: expected at least one stage, got none")
        for i, st in enumerate(self.stages):
            if not isinstance(st, Stage):
                raise ParameterError(f"Pipeline: expected a Stage at position {i}, got {type(st).__name__}")
        for i in range(1, len(self.stages)):
            a, b = self.stages[i - 1], self.stages[i]
            if a.output_sample_rate != b.sample_rate:
                raise FormatError(
                    f"Pipeline: {b.name} (stage {i}) expects sample_rate {b.sample_rate}, "
                    f"but {a.name} (stage {i - 1}) outputs {a.output_sample_rate} (insert Resample between them)")
        fixed = {st._declared_channels for st in self.stages} - {None}
        if num_channels is not None:
            fixed.add(num_channels)
        if len(fixed) > 1:
            raise FormatError(f"Pipeline: stages declare different channel counts {sorted(fixed)}")
        self.block_size = self._frame_size()
        super().__init__(sample_rate=self.stages[0].sample_rate,
                         num_channels=fixed.pop() if fixed else None,
                         output_sample_rate=self.stages[-1].output_sample_rate)

    def _frame_size(self) -> int:
        """Smallest input frame that every stage receives as whole blocks."""
        rate_in = self.stages[0].sample_rate
        # frame duration in seconds must be a multiple of each stage's block duration
        # and give whole samples at every rate in the chain
        dur = Fraction(1, 100)
        for st in self.stages:
            quanta = [Fraction(1, st.sample_rate), Fraction(1, st.output_sample_rate)]
            if st.block_size:
                quanta.append(Fraction(st.block_size, st.sample_rate))
            for q in quanta:
                dur = _frac_lcm(dur, q)
        n = dur * rate_in
        assert n.denominator == 1
        return int(n)

    @property
    def latency(self) -> int:
        total = sum(Fraction(st.latency, st.output_sample_rate) for st in self.stages)
        return round(total * self.output_sample_rate)

    def reset(self) -> None:
        for st in getattr(self, "stages", ()):
            st.reset()
        super().reset()

    def _allocate(self, num_channels: int) -> None:
        # the pipeline has checked the layout of the stream; its stages take the count from it
        for st in self.stages:
            if st.num_channels is None:
                st._fix_channels(num_channels)
            elif st.num_channels != num_channels:
                raise FormatError(f"Pipeline: {st.name} expects {st.num_channels} channel(s), got {num_channels}")

    def _process_blocks(self, x: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
        for st in self.stages:
            x = st._push(x, meta)
        return x

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(st) for st in self.stages)
        return f"Pipeline([\n  {inner}\n])"

    def __len__(self) -> int:
        return len(self.stages)

    def __getitem__(self, i: int) -> Stage:
        return self.stages[i]


def _frac_lcm(a: Fraction, b: Fraction) -> Fraction:
    """Least common multiple of two positive rationals."""
    return Fraction(lcm(a.numerator, b.numerator), gcd(a.denominator, b.denominator))
