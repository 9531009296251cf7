"""``probe``: what is in a media file, without decoding it."""

from __future__ import annotations

import os
from dataclasses import dataclass

from mediacore.io._av import open_input, seconds


@dataclass(frozen=True)
class AudioStreamInfo:
    """One audio stream as declared by the container / codec headers."""

    index: int  #: stream index in the container (all stream types counted)
    codec: str  #: FFmpeg decoder name, e.g. ``"aac"``, ``"opus"``, ``"pcm_s16le"``
    sample_rate: int
    channels: int
    layout: str  #: FFmpeg channel layout name, e.g. ``"stereo"``
    bitrate: int | None  #: bit/s, None when unknown
    duration_s: float | None
    sample_format: str  #: decoder output format, e.g. ``"fltp"``, ``"s16"``
    language: str | None = None


@dataclass(frozen=True)
class MediaInfo:
    """Summary of a media file (see :func:`probe`)."""

    path: str
    container: str  #: FFmpeg demuxer name, e.g. ``"wav"``, ``"mov,mp4,m4a,3gp,3g2,mj2"``
    duration_s: float | None
    audio_streams: tuple[AudioStreamInfo, ...]
    has_video: bool
    video_codecs: tuple[str, ...]
    subtitle_streams: int = 0
    data_streams: int = 0
    bitrate: int | None = None
    metadata: tuple[tuple[str, str], ...] = ()

    @property
    def has_audio(self) -> bool:
        return bool(self.audio_streams)


def probe(path: str | os.PathLike[str]) -> MediaInfo:
    """Describe *path*: container, duration, audio streams, video codecs.

    Raises :class:`~mediacore.errors.MediaError` if the file is missing or
    cannot be parsed.  A file without audio is *not* an error here
    (``info.audio_streams == ()``)."""
    p = os.fspath(path)
    with open_input(p) as c:
        audio = []
        for s in c.streams.audio:
            cc = s.codec_context
            dur = seconds(s.duration, s.time_base)
            if cc is None:  # no decoder in this FFmpeg build
                audio.append(AudioStreamInfo(index=s.index, codec="unsupported", sample_rate=0, channels=0,
                                             layout="", bitrate=None, duration_s=dur, sample_format=""))
                continue
            audio.append(
                AudioStreamInfo(
                    index=s.index,
                    codec=cc.name,
                    sample_rate=int(cc.sample_rate),
                    channels=int(cc.channels),
                    layout=cc.layout.name,
                    bitrate=int(cc.bit_rate) if cc.bit_rate else None,
                    duration_s=dur,
                    sample_format=cc.format.name if cc.format is not None else "",
                    language=s.language,
                )
            )
        videos = [s for s in c.streams.video if not (s.disposition & s.disposition.attached_pic)]
        duration = c.duration / 1_000_000 if c.duration is not None else None
        if duration is None:
            durs = [seconds(s.duration, s.time_base) for s in c.streams]
            durs = [d for d in durs if d is not None]
            duration = max(durs) if durs else None
        return MediaInfo(
            path=p,
            container=c.format.name,
            duration_s=duration,
            audio_streams=tuple(audio),
            has_video=bool(videos),
            video_codecs=tuple(s.codec_context.name for s in videos),
            subtitle_streams=len(c.streams.subtitles),
            data_streams=len(c.streams.data),
            bitrate=int(c.bit_rate) if c.bit_rate else None,
            metadata=tuple(sorted(c.metadata.items())),
        )
