"""Media I/O: probe, read, write and stream-clean audio in any container PyAV reads.

Public API::

    probe(path) -> MediaInfo
    read_audio(path, *, stream=0) -> (samples float32 (channels, n), sample_rate)
    write_audio(path, samples, sample_rate, *, codec=None, bitrate=None) -> None
    clean_media(in_path, out_path, make_pipeline, *, audio_codec=None, bitrate=None,
                out_sample_rate=None, progress=False, loudness_lufs=None,
                true_peak_dbtp=-1.0) -> CleanReport
"""

from mediacore.io.atomic import atomic_output
from mediacore.io.clean import AudioPipeline, AudioStreamReport, CleanReport, clean_media
from mediacore.io.probe import AudioStreamInfo, MediaInfo, probe
from mediacore.io.read import read_audio
from mediacore.io.write import write_audio

__all__ = [
    "AudioPipeline",
    "AudioStreamInfo",
    "AudioStreamReport",
    "CleanReport",
    "MediaInfo",
    "atomic_output",
    "clean_media",
    "probe",
    "read_audio",
    "write_audio",
]
