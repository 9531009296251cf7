"""Audio encode / decode stages: Opus, AAC, FLAC (PyAV / FFmpeg underneath).

An encoder takes float32 samples of any chunk length (like every stage),
cuts them into codec frames and returns the :class:`EncodedPacket` s that
are ready; ``flush()`` pads the last frame with silence, drains the codec
and resets.  ``encode_frame`` takes exactly one codec frame (the real-time
path: one 10 or 20 ms frame in, its packet out).  Packet ``pts`` are in
samples (time base 1/sample_rate) from the first input sample; the codec's
priming shows as a negative first pts (Opus: -312), as in a container.

A decoder takes packets and returns float32 (channels, n).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np

from mediacore.codec import _pyav
from mediacore.codec.packet import EncodedPacket
from mediacore.errors import FormatError, ParameterError
from mediacore.frame import AudioFrame, as_float_block
from mediacore.stage import check_choice, check_sample_rate

_LAYOUTS = {1: "mono", 2: "stereo"}


def _check_int(owner: str, what: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise ParameterError(f"{owner}: expected {what} as an integer in [{lo}, {hi}], got {value!r}")
    return int(value)


class AudioEncoder:
    """Base of the audio encoders: reblocking, pts, flush, reset, repr."""

    codec_name = ""
    #: FFmpeg sample format fed to the encoder
    sample_format = "flt"

    def __init__(self, *, sample_rate: int, num_channels: int, bitrate_bps: int | None) -> None:
        self._sample_rate = check_sample_rate(self.name, sample_rate)
        self._channels = _check_int(self.name, "num_channels", num_channels, 1, 2)
        self.bitrate_bps = None if bitrate_bps is None else _check_int(self.name, "bitrate_bps", bitrate_bps,
                                                                       6000, 512_000 * self._channels)
        self.reset()

    # -- declared facts ----------------------------------------------------
    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def num_channels(self) -> int:
        return self._channels

    @property
    def frame_size(self) -> int:
        """Samples per codec frame (per channel)."""
        return self._frame_size

    @property
    def extradata(self) -> bytes | None:
        """Codec header a decoder or muxer needs (Opus head, AAC AudioSpecificConfig)."""
        return self._cc.extradata

    # -- subclass hooks ----------------------------------------------------
    def _options(self) -> dict[str, Any]:
        return {}

    def _params(self) -> dict[str, Any]:
        return {"bitrate_bps": self.bitrate_bps}

    # -- API -----------------------------------------------------------------
    def reset(self) -> None:
        """Drop the stream: new codec state, empty buffer, pts from 0."""
        setup = dict(sample_rate=self._sample_rate, layout=_LAYOUTS[self._channels], format=self.sample_format,
                     time_base=Fraction(1, self._sample_rate))
        if self.bitrate_bps:
            setup["bit_rate"] = self.bitrate_bps
        self._cc = _pyav.open_encoder(self.name, self.codec_name, options=self._options(), setup=setup)
        self._frame_size = int(self._cc.frame_size) or 4096
        self._fifo = np.zeros((self._channels, 0), np.float32)
        self._pts = 0
        self._started = False

    def encode_frame(self, samples: Any) -> list[EncodedPacket]:
        """Encode exactly one codec frame; return the packets that are ready."""
        x = as_float_block(samples, self.name)
        self._started = True
        if x.shape != (self._channels, self._frame_size) or self._fifo.shape[1]:
            raise FormatError(
                f"{self.name}: expected frame of {self._frame_size} samples x {self._channels} channel(s) "
                f"at {self._sample_rate} Hz, got {x.shape[1]} x {x.shape[0]}")
        return self._encode(x)

    def process(self, samples: Any) -> list[EncodedPacket]:
        """Any number of samples in; packets of every whole frame out."""
        x = as_float_block(samples, self.name)
        if x.shape[0] != self._channels:
            raise FormatError(f"{self.name}: expected {self._channels} channel(s), got {x.shape[0]}")
        self._started = True
        buf = np.concatenate([self._fifo, x], axis=1) if self._fifo.shape[1] else x
        fs = self._frame_size
        n = buf.shape[1] // fs * fs
        out: list[EncodedPacket] = []
        for i in range(0, n, fs):
            out += self._encode(buf[:, i: i + fs])
        self._fifo = buf[:, n:].copy()
        return out

    def process_frame(self, frame: AudioFrame) -> list[EncodedPacket]:
        if frame.sample_rate != self._sample_rate:
            raise FormatError(f"{self.name}: expected sample_rate {self._sample_rate}, got {frame.sample_rate}")
        if not self._started and frame.pts is not None:
            self._pts = int(frame.pts)  # the stream's clock starts where the first frame says
        return self.process(frame.samples)

    def flush(self) -> list[EncodedPacket]:
        """Encode what is buffered as a short last frame (the packet's duration says how
        much is real), drain the codec, reset."""
        out: list[EncodedPacket] = []
        if self._fifo.shape[1]:
            last = self._fifo
            if not _pyav.accepts_small_last_frame(self._cc):
                last = np.concatenate([last, np.zeros((self._channels, self._frame_size - last.shape[1]),
                                                      np.float32)], axis=1)
            out += self._encode(last)
            self._fifo = np.zeros((self._channels, 0), np.float32)
        out += _pyav.to_packets(self._cc.encode(None), self.codec_name, Fraction(1, self._sample_rate))
        self.reset()
        return out

    def _encode(self, x: np.ndarray) -> list[EncodedPacket]:
        f = _pyav.audio_frame(x, self._cc.format.name, _LAYOUTS[self._channels], self._sample_rate, self._pts)
        self._pts += x.shape[1]
        return _pyav.to_packets(self._cc.encode(f), self.codec_name, Fraction(1, self._sample_rate))

    def __repr__(self) -> str:
        params = {"sample_rate": self._sample_rate, "num_channels": self._channels, **self._params()}
        return f"{self.name}({', '.join(f'{k}={v!r}' for k, v in params.items())})"


class OpusEncoder(AudioEncoder):
    """Opus (libopus) for real-time media.

    Parameters
    ----------
    sample_rate : int, default 48000
        8000, 12000, 16000, 24000 or 48000.
    num_channels : int, default 1
    bitrate_bps : int, default 32000
    complexity : int, default 10
        0 (fastest) .. 10 (best).
    frame_ms : float, default 20
        2.5, 5, 10, 20, 40 or 60 (10 and 20 are the WebRTC norms).
    fec : bool, default False
        In-band forward error correction (LBRR); needs ``packet_loss_percent`` > 0 to take effect.
    packet_loss_percent : int, default 0
        Expected loss, tunes FEC.
    dtx : bool, default False
        Discontinuous transmission: during silence only a comfort-noise
        update every 400 ms is sent; the frames libopus marks as not to be
        transmitted (1-2 byte packets) are left out, so ``pts`` has gaps, as
        in RTP.  FFmpeg's libopus wrapper (libavcodec 62 here) has no DTX
        control, so with ``dtx=True`` the stage drives libopus directly (the
        library PyAV ships, through ctypes); same packets, same pts rules.
    application : {"voip", "audio", "lowdelay"}, default "voip"
    vbr : bool, default True
    """

    codec_name = "libopus"
    RATES = (8000, 12000, 16000, 24000, 48000)
    FRAME_MS = (2.5, 5.0, 10.0, 20.0, 40.0, 60.0)

    def __init__(self, *, sample_rate: int = 48000, num_channels: int = 1, bitrate_bps: int = 32000,
                 complexity: int = 10, frame_ms: float = 20.0, fec: bool = False, packet_loss_percent: int = 0,
                 dtx: bool = False, application: str = "voip", vbr: bool = True) -> None:
        check_choice("OpusEncoder", "sample_rate", sample_rate, self.RATES)
        self.complexity = _check_int("OpusEncoder", "complexity", complexity, 0, 10)
        self.frame_ms = float(check_choice("OpusEncoder", "frame_ms", frame_ms, self.FRAME_MS))
        self.fec = bool(fec)
        self.packet_loss_percent = _check_int("OpusEncoder", "packet_loss_percent", packet_loss_percent, 0, 100)
        self.dtx = bool(dtx)
        self.application = check_choice("OpusEncoder", "application", application, ("voip", "audio", "lowdelay"))
        self.vbr = bool(vbr)
        super().__init__(sample_rate=sample_rate, num_channels=num_channels, bitrate_bps=bitrate_bps)

    def _options(self) -> dict[str, Any]:
        opts = {"application": self.application, "frame_duration": f"{self.frame_ms:g}",
                "compression_level": self.complexity, "fec": int(self.fec), "packet_loss": self.packet_loss_percent,
                "vbr": "on" if self.vbr else "off"}
        return opts

    # -- DTX: libopus directly ------------------------------------------------
    def reset(self) -> None:
        if not self.dtx:
            super().reset()
            return
        from mediacore.codec import _libopus as lo

        settings = {lo.SET_BITRATE: self.bitrate_bps, lo.SET_VBR: int(self.vbr), lo.SET_COMPLEXITY: self.complexity,
                    lo.SET_INBAND_FEC: int(self.fec), lo.SET_PACKET_LOSS_PERC: self.packet_loss_percent,
                    lo.SET_DTX: 1}
        self._opus = lo.LibOpus(self.name, self._sample_rate, self._channels, self.application, settings)
        self._frame_size = int(round(self._sample_rate * self.frame_ms / 1000))
        self._fifo = np.zeros((self._channels, 0), np.float32)
        self._pts = 0
        self._started = False
        self._n_real = 0

    @property
    def extradata(self) -> bytes | None:
        if not self.dtx:
            return super().extradata
        from mediacore.codec._libopus import opus_head

        return opus_head(self._channels, self._opus.lookahead * 48000 // self._sample_rate, self._sample_rate)

    def _encode(self, x: np.ndarray, duration: int | None = None) -> list[EncodedPacket]:
        if not self.dtx:
            return super()._encode(x)
        data = self._opus.encode(x)
        pts = self._pts - self._opus.lookahead
        self._pts += x.shape[1]
        if len(data) <= 2:  # libopus: "no need to transmit" (DTX)
            return []
        return [EncodedPacket(data, pts, pts, x.shape[1] if duration is None else duration,
                              Fraction(1, self._sample_rate), True, self.codec_name)]

    def process(self, samples: Any) -> list[EncodedPacket]:
        if self.dtx:
            self._n_real += as_float_block(samples, self.name).shape[1]
        return super().process(samples)

    def flush(self) -> list[EncodedPacket]:
        if not self.dtx:
            return super().flush()
        # libopus takes whole frames only and its output lags by the look-ahead:
        # pad the last frame, then feed silence until every input sample is out
        fs = self._frame_size
        end = self._n_real
        x = np.concatenate([self._fifo, np.zeros((self._channels, (-self._fifo.shape[1]) % fs), np.float32)], axis=1)
        x = np.concatenate([x, np.zeros((self._channels, -(-self._opus.lookahead // fs) * fs), np.float32)], axis=1)
        out: list[EncodedPacket] = []
        for i in range(0, x.shape[1], fs):
            start = self._pts - self._opus.lookahead
            if start >= end:
                break
            out += self._encode(x[:, i: i + fs], duration=min(fs, end - start))
        self._opus.close()
        self.reset()
        return out

    def _params(self) -> dict[str, Any]:
        return {"bitrate_bps": self.bitrate_bps, "complexity": self.complexity, "frame_ms": self.frame_ms,
                "fec": self.fec, "packet_loss_percent": self.packet_loss_percent, "dtx": self.dtx,
                "application": self.application, "vbr": self.vbr}

    def encode_frame(self, samples: Any) -> list[EncodedPacket]:
        x = as_float_block(samples, self.name)
        if x.shape[1] != self._frame_size:
            sizes = " or ".join(str(int(self._sample_rate * ms / 1000)) for ms in (10.0, 20.0))
            raise FormatError(f"{self.name}: expected frame of {sizes} samples at {self._sample_rate} Hz "
                              f"(frame_ms={self.frame_ms:g} -> {self._frame_size}), got {x.shape[1]}")
        return super().encode_frame(x)


class AacEncoder(AudioEncoder):
    """AAC-LC (FFmpeg's native encoder), 1024-sample frames.

    Parameters: ``sample_rate`` (8000-96000), ``num_channels`` (1 or 2),
    ``bitrate_bps`` (default 64000 per channel).
    """

    codec_name = "aac"
    sample_format = "fltp"

    def __init__(self, *, sample_rate: int = 48000, num_channels: int = 1, bitrate_bps: int | None = None) -> None:
        check_choice("AacEncoder", "sample_rate", sample_rate,
                     (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000))
        super().__init__(sample_rate=sample_rate, num_channels=num_channels,
                         bitrate_bps=bitrate_bps or 64000 * int(num_channels))


class FlacEncoder(AudioEncoder):
    """FLAC, lossless: decoding gives the input back exactly (at 16 bits).

    Parameters: ``sample_rate``, ``num_channels``, ``compression_level``
    (0 fastest .. 12 smallest, default 5).
    """

    codec_name = "flac"
    sample_format = "s16"

    def __init__(self, *, sample_rate: int = 48000, num_channels: int = 1, compression_level: int = 5) -> None:
        self.compression_level = _check_int("FlacEncoder", "compression_level", compression_level, 0, 12)
        super().__init__(sample_rate=sample_rate, num_channels=num_channels, bitrate_bps=None)

    def _options(self) -> dict[str, Any]:
        return {"compression_level": self.compression_level}

    def _params(self) -> dict[str, Any]:
        return {"compression_level": self.compression_level}


class AudioDecoder:
    """Decode packets of one audio stream to float32 (channels, n).

    Parameters
    ----------
    codec : str
        "opus", "aac", "flac" (FFmpeg decoder names; "libopus" is accepted for "opus").
    sample_rate, num_channels : int
    extradata : bytes, optional
        The encoder's :attr:`AudioEncoder.extradata` (required for AAC).
    """

    def __init__(self, *, codec: str, sample_rate: int = 48000, num_channels: int = 1,
                 extradata: bytes | None = None) -> None:
        self.codec = {"libopus": "opus"}.get(codec, codec)
        self._sample_rate = check_sample_rate("AudioDecoder", sample_rate)
        self._channels = _check_int("AudioDecoder", "num_channels", num_channels, 1, 8)
        self.extradata = extradata
        self.reset()

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    def reset(self) -> None:
        self._cc = _pyav.open_decoder("AudioDecoder", self.codec, setup=dict(
            sample_rate=self._sample_rate, layout=_LAYOUTS.get(self._channels), extradata=self.extradata))
        self.samples_out = 0

    def process(self, packets: EncodedPacket | list[EncodedPacket]) -> np.ndarray:
        if isinstance(packets, EncodedPacket):
            packets = [packets]
        parts = []
        for p in packets:
            if not isinstance(p, EncodedPacket):
                raise FormatError(f"AudioDecoder: expected EncodedPacket, got {type(p).__name__}")
            if not p.data:  # an empty packet would end the stream
                continue
            try:
                frames = self._cc.decode(_pyav.to_av_packet(p))
            except Exception as exc:
                raise FormatError(f"AudioDecoder: {self.codec} packet at pts {p.pts} does not decode: {exc}") from exc
            parts += _pyav.frames_to_float(frames)
        return self._join(parts)

    def flush(self) -> np.ndarray:
        parts = _pyav.frames_to_float(self._cc.decode(None))
        self.reset()
        return self._join(parts)

    def _join(self, parts: list[np.ndarray]) -> np.ndarray:
        y = np.concatenate(parts, axis=1) if parts else np.zeros((self._channels, 0), np.float32)
        if y.shape[0] != self._channels:
            raise FormatError(f"AudioDecoder: expected {self._channels} channel(s), the stream has {y.shape[0]}")
        self.samples_out += y.shape[1]
        return y

    def __repr__(self) -> str:
        return f"AudioDecoder(codec={self.codec!r}, sample_rate={self._sample_rate}, num_channels={self._channels})"
