"""Stage classes: thin wrappers that own state and call the kernels in :mod:`mediacore.dsp`."""

from .denoise import Denoise
from . import denoise_peers  # noqa: F401  registers the peer backends; imports no peer package
from .dynamics import AGC, Gain, Limiter
from .highpass import HighPass
from .loudness import LoudnessMeter, LoudnessNormalize, TruePeakLimiter
from .resample import COMMON_RATES, Resample
from .vad import VAD

__all__ = ["AGC", "COMMON_RATES", "Denoise", "Gain", "HighPass", "Limiter", "LoudnessMeter", "LoudnessNormalize",
           "Resample", "TruePeakLimiter", "VAD"]
