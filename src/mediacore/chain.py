"""The default processing chain used by ``mediacore clean`` and ``mediacore demo``."""

from __future__ import annotations

from typing import Any

from .errors import ParameterError
from .pipeline import Pipeline
from .stages import AGC, VAD, Denoise, HighPass, Resample

#: rates the chain runs at without resampling, per denoiser
NATIVE_RATES = {"neural": (16000, 48000), "dsp": (8000, 16000, 32000, 48000), "none": (8000, 16000, 32000, 48000)}
DENOISE_CHOICES = ("neural", "dsp", "none")


def working_rate(sample_rate: int, denoise: str = "neural") -> int:
    """Rate the chain processes at for input at ``sample_rate``."""
    if sample_rate in NATIVE_RATES[denoise]:
        return sample_rate
    return 16000 if sample_rate <= 16000 else 48000


def default_chain(*, sample_rate: int, num_channels: int | None = None, denoise: str = "neural",
                  agc: bool = True, highpass: bool = True, vad: str = "energy",
                  max_attenuation_db: float | None = None, target_level_dbfs: float = -23.0,
                  highpass_hz: float = 80.0, **denoise_options: Any) -> Pipeline:
    """Build ``[Resample] -> Denoise (with high-pass) -> VAD -> AGC -> [Resample]``.

    With a denoiser the high-pass is done inside its spectral gain (zero
    phase, no extra cost); with ``denoise="none"`` a HighPass stage (IIR)
    takes its place.

    ``denoise`` is ``"neural"`` (default: our streaming model, better than
    ``"dsp"`` on every dev-set metric), ``"dsp"`` (classical, numba) or
    ``"none"``.  Input at a rate the stages don't take natively (44.1, 22.05, 24 kHz ...)
    is resampled to 48 kHz (16 kHz below that) and back, so the output has
    the input's rate.  ``denoise="none"`` and ``agc=False`` leave those
    stages out; ``vad`` picks the VAD backend that gates the AGC.  The
    default is the ``energy`` detector: on denoised audio it gates the AGC as
    well as the WebRTC detector (dev set: output speech level within
    0.86 dB vs 0.87 dB of the target on average) at a third of the cost.
    """
    if denoise not in DENOISE_CHOICES:
        raise ParameterError(f"default_chain: expected denoise in {DENOISE_CHOICES}, got {denoise!r}")
    rate = working_rate(sample_rate, denoise)
    stages = []
    if rate != sample_rate:
        stages.append(Resample(sample_rate=sample_rate, output_sample_rate=rate))
    if denoise != "none":
        stages.append(Denoise(sample_rate=rate, backend=denoise, max_attenuation_db=max_attenuation_db,
                              highpass_hz=highpass_hz if highpass else None, **denoise_options))
    elif highpass:
        stages.append(HighPass(sample_rate=rate, cutoff_hz=highpass_hz))
    if agc:
        stages.append(VAD(sample_rate=rate, backend=vad))
        stages.append(AGC(sample_rate=rate, target_level_dbfs=target_level_dbfs))
    if rate != sample_rate:
        stages.append(Resample(sample_rate=rate, output_sample_rate=sample_rate))
    if not stages:
        raise ParameterError("default_chain: every stage is switched off; nothing to do")
    return Pipeline(stages, num_channels=num_channels)
