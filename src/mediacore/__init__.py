"""mediacore: composable real-time audio stages for conferencing, recording cleanup and benchmarks."""

from .chain import default_chain
from .errors import (FormatError, MediaCoreError, MediaError, MissingDependencyError, ParameterError,
                     SampleTypeError)
from .frame import AudioFrame
from .pipeline import Pipeline
from .stage import Stage
from .stages import (AGC, VAD, Denoise, Gain, HighPass, Limiter, LoudnessMeter, LoudnessNormalize, Resample,
                     TruePeakLimiter)

__version__ = "0.1.0"

__all__ = [
    "AGC", "AudioFrame", "Denoise", "FormatError", "Gain", "HighPass", "Limiter", "LoudnessMeter", "LoudnessNormalize", "MediaCoreError", "MediaError",
    "MissingDependencyError", "ParameterError", "Pipeline", "Resample", "SampleTypeError", "Stage", "TruePeakLimiter", "VAD",
    "__version__", "default_chain",
]
