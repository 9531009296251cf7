"""Is a media file complete?  Evidence from its byte structure and its headers.

FFmpeg's demuxers stop quietly at the end of a truncated file, so a decoder
that runs to the end proves nothing.  Two kinds of evidence are used, per
container (the README's table on ``clean`` lists them):

* **structure** (:func:`structure_damage`, before decoding): the container's
  own framing must account for the file up to its last byte: top-level boxes
  (MP4/MOV), RIFF/FORM chunks (WAV, AVI, AIFF), the Matroska segment size,
  Ogg pages (complete, sequence numbers without gaps, every stream ending with
  an end-of-stream page), ADTS and MPEG audio frames (the last one complete;
  the Xing/Info frame count when there is one), FLAC metadata blocks, MPEG-TS
  packets (a whole number of them; the last PES packet of every stream that
  declares a PES length complete).
* **declared length** (:class:`StreamTally` and :func:`declared_length`, after
  decoding): the samples or packets the headers promise (WAV ``data`` size,
  FLAC STREAMINFO, AIFF COMM, the MP4 sample table, Matroska DURATION tags)
  against what was found; and no packet the demuxer flags as corrupt.

Every finding becomes one :class:`~mediacore.errors.MediaError` built by
:func:`truncated_error`: the file, what was expected, what was found.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av

from mediacore.errors import MediaError

#: how far back from the end the MPEG-TS check looks for the start of each stream's last PES packet
TS_TAIL_BYTES = 4 << 20


def truncated_error(path: str, expected: str, found: str, evidence: str | None = None) -> MediaError:
    """The one message for an incomplete file: ``{path}: truncated or damaged:
    expected {expected}, found {found}; {evidence}``."""
    tail = f"; {evidence}" if evidence else ""
    return MediaError(f"{path}: truncated or damaged: expected {expected}, found {found}{tail}")


def fmt_seconds(s: float | Fraction | None) -> str:
    return "an unknown duration" if s is None else f"{float(s):.3f} s"


# ---------------------------------------------------------------------------
# structure: byte walks
# ---------------------------------------------------------------------------


def structure_damage(path: str, container_format: str | None = None) -> str | None:
    """A sentence describing where the file's framing shows it is cut or has a
    gap, or None when the structure is whole (or the format has none to check).

    *container_format* is FFmpeg's demuxer name (``"mov,mp4,m4a,3gp,3g2,mj2"``,
    ``"ogg"``, ...); None guesses the format from the first bytes (for files
    FFmpeg cannot open)."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size == 0:
                return None
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
                kinds = set(container_format.split(",")) if container_format else _guess_kinds(m, size)
                for names, check in _WALKS:
                    if kinds & names:
                        found = check(m, size)
                        if found:
                            return found
    except (OSError, ValueError):
        return None
    return None


def file_kind(path: str) -> str:
    """The container's name for messages ("MP4/MOV", "Ogg", ...), guessed from the
    first bytes; "media" when they say nothing."""
    try:
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
            kinds = _guess_kinds(m, len(m))
    except (OSError, ValueError):
        return "media"
    names = {"mov": "MP4/MOV", "wav": "RIFF (WAV/AVI)", "aiff": "AIFF", "matroska": "Matroska/WebM", "ogg": "Ogg",
             "flac": "FLAC", "mpegts": "MPEG-TS", "aac": "ADTS AAC", "mp3": "MP3"}
    return next((names[k] for k in kinds if k in names), "media")


def _guess_kinds(m: Any, size: int) -> set[str]:
    head = bytes(m[0:12])
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"):
        return {"mov"}
    if head[:4] in (b"RIFF", b"RF64"):
        return {"wav"}
    if head[:4] == b"FORM":
        return {"aiff"}
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return {"matroska"}
    if head[:4] == b"OggS":
        return {"ogg"}
    if head[:4] == b"fLaC":
        return {"flac"}
    if size > 376 and m[0] == 0x47 and m[188] == 0x47 and m[376] == 0x47:
        return {"mpegts"}
    pos = _id3v2_end(m, size)
    if pos + 2 <= size and m[pos] == 0xFF:
        if (m[pos + 1] & 0xF6) == 0xF0:
            return {"aac"}
        if (m[pos + 1] & 0xE0) == 0xE0:
            return {"mp3"}
    return set()


def _fourcc(b: bytes) -> bool:
    return len(b) == 4 and all(32 <= c < 127 for c in b)


def _iso_boxes(m: Any, size: int) -> str | None:
    """Top-level ISO-BMFF boxes: the last one must end at or before the end of the file."""
    pos = 0
    while pos + 8 <= size:
        n = int.from_bytes(m[pos:pos + 4], "big")
        kind = m[pos + 4:pos + 8]
        if not _fourcc(kind):
            return None  # trailing bytes that are not a box: nothing to say
        if n == 1:
            if pos + 16 > size:
                return f"the '{kind.decode()}' box header at byte {pos} is cut off at byte {size}"
            n = int.from_bytes(m[pos + 8:pos + 16], "big")
        elif n == 0:
            return None  # "extends to the end of the file"
        if n < 8:
            return None
        if pos + n > size:
            return (f"the '{kind.decode()}' box at byte {pos} needs {n} bytes, the file ends "
                    f"{size - pos} bytes into it")
        pos += n
    if 0 < size - pos < 8 and m[pos:size].strip(b"\0"):
        return f"a box header at byte {pos} is cut off at byte {size}"
    return None


def _chunks(m: Any, size: int, ids: tuple[bytes, ...], order: str) -> str | None:
    pos = 0
    while pos + 8 <= size:
        cid = bytes(m[pos:pos + 4])
        if cid not in ids:
            return None  # not a chunk of ours (or trailing bytes): nothing to say
        n = int.from_bytes(m[pos + 4:pos + 8], order)  # type: ignore[arg-type]
        if n in (0, 0xFFFFFFFF) or cid == b"RF64":
            return None  # streaming writers leave the size open; RF64 keeps it in ds64
        end = pos + 8 + n
        # slack: a missing pad byte after an odd-sized chunk, and writers that count the 8-byte
        # header in the size, are common and harmless
        if end > size + 8:
            form = bytes(m[pos + 8:pos + 12]).decode("latin-1").strip()
            return (f"the {cid.decode()} '{form}' chunk at byte {pos} needs {n + 8} bytes, the file ends "
                    f"{size - pos} bytes into it")
        pos = end + (n & 1)
    return None


def _riff_chunks(m: Any, size: int) -> str | None:
    return _chunks(m, size, (b"RIFF", b"RF64"), "little")


def _aiff_form(m: Any, size: int) -> str | None:
    return _chunks(m, size, (b"FORM",), "big")


def _ebml_vint(m: Any, pos: int, size: int) -> tuple[int, int, bool] | None:
    """(value, length, all-ones) of an EBML variable-size integer at *pos*."""
    if pos >= size:
        return None
    first = m[pos]
    length = 1
    mask = 0x80
    while length <= 8 and not first & mask:
        mask >>= 1
        length += 1
    if length > 8 or pos + length > size:
        return None
    value = first & (mask - 1)
    for i in range(1, length):
        value = (value << 8) | m[pos + i]
    return value, length, value == (1 << (7 * length)) - 1


def _ebml_segment(m: Any, size: int) -> str | None:
    """The Matroska/WebM Segment element's declared size must fit in the file."""
    if size < 4 or m[0:4] != b"\x1a\x45\xdf\xa3":
        return None
    v = _ebml_vint(m, 4, size)
    if v is None:
        return "the EBML header is cut off"
    pos = 4 + v[1] + v[0]
    if pos + 4 > size:
        return f"the file ends at byte {size}, before the Matroska Segment element"
    if m[pos:pos + 4] != b"\x18\x53\x80\x67":
        return None
    v = _ebml_vint(m, pos + 4, size)
    if v is None:
        return f"the Matroska Segment header at byte {pos} is cut off"
    n, length, unknown = v
    if unknown:
        return None  # live recording: size left open, the duration tags are the evidence
    start = pos + 4 + length
    if start + n > size:
        return (f"the Matroska Segment at byte {pos} needs {start - pos + n} bytes, the file ends "
                f"{size - pos} bytes into it")
    return None


def _ogg_pages(m: Any, size: int) -> str | None:
    """Every page complete, page sequence numbers without gaps, every logical
    stream closed by an end-of-stream page."""
    pos = 0
    open_streams: dict[int, int] = {}  # serial -> last page sequence number
    while pos < size:
        if m[pos:pos + 4] != b"OggS":
            if pos == 0:
                return None
            nxt = m.find(b"OggS", pos)
            if nxt < 0:
                return None  # trailing bytes after the last page: not ours to judge
            return f"{nxt - pos} bytes of garbage between Ogg pages at byte {pos}"
        if pos + 27 > size:
            return f"the Ogg page header at byte {pos} is cut off at byte {size}"
        nseg = m[pos + 26]
        if pos + 27 + nseg > size:
            return f"the Ogg page header at byte {pos} is cut off at byte {size}"
        body = sum(m[pos + 27:pos + 27 + nseg])
        n = 27 + nseg + body
        if pos + n > size:
            return f"the Ogg page at byte {pos} needs {n} bytes, the file ends {size - pos} bytes into it"
        flags = m[pos + 5]
        serial = int.from_bytes(m[pos + 14:pos + 18], "little")
        seq = int.from_bytes(m[pos + 18:pos + 22], "little")
        if flags & 0x02:  # beginning of stream
            open_streams[serial] = seq
        elif serial in open_streams:
            if seq != open_streams[serial] + 1:
                return (f"Ogg stream {serial}: page {open_streams[serial] + 1} is missing "
                        f"(page {seq} follows page {open_streams[serial]} at byte {pos})")
            open_streams[serial] = seq
        if flags & 0x04:  # end of stream
            open_streams.pop(serial, None)
        pos += n
    if open_streams:
        serial, seq = next(iter(open_streams.items()))
        return (f"Ogg stream {serial} has no end-of-stream page: the file ends after its page {seq}, "
                f"at byte {size}")
    return None


def _id3v2_end(m: Any, size: int) -> int:
    if size >= 10 and m[0:3] == b"ID3":
        n = 0
        for b in m[6:10]:
            n = (n << 7) | (b & 0x7F)
        return 10 + n + (10 if m[5] & 0x10 else 0)
    return 0


def _trailing_tag(m: Any, pos: int, size: int) -> bool:
    """An ID3v1 / APE / Lyrics3 tag (or zero padding) from *pos* to the end."""
    rest = size - pos
    head = m[pos:pos + 8]
    if head[:3] == b"TAG" and rest == 128:
        return True
    if head == b"APETAGEX" or head[:6] == b"LYRICS" or head[:3] == b"ID3":
        return True
    return not m[pos:size].strip(b"\0")


def _adts_frames(m: Any, size: int) -> str | None:
    """ADTS frames: each header states the frame length; the last frame must be whole."""
    pos = _id3v2_end(m, size)
    frames = 0
    while pos < size:
        if pos + 7 > size:
            if m[pos] == 0xFF:
                return f"ADTS frame {frames + 1} header at byte {pos} is cut off at byte {size}"
            return None
        if m[pos] != 0xFF or (m[pos + 1] & 0xF6) != 0xF0:
            return None  # a trailing tag or bytes that are not ADTS: nothing to say
        n = ((m[pos + 3] & 0x03) << 11) | (m[pos + 4] << 3) | (m[pos + 5] >> 5)
        if n < 7:
            return None
        if pos + n > size:
            return (f"ADTS frame {frames + 1} at byte {pos} needs {n} bytes, the file ends "
                    f"{size - pos} bytes into it")
        frames += 1
        pos += n
    return None


_MP3_BITRATES = {  # (mpeg1?, layer) -> kbit/s by index
    (True, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _mp3_header(m: Any, pos: int) -> tuple[int, int, int, bool, int] | None:
    """(frame bytes, samples per frame, sample rate, mono, version bits) of the MPEG audio frame header at *pos*."""
    b1, b2, b3 = m[pos + 1], m[pos + 2], m[pos + 3]
    if m[pos] != 0xFF or (b1 & 0xE0) != 0xE0:
        return None
    version = (b1 >> 3) & 3
    layer = 4 - ((b1 >> 1) & 3)
    br_idx, sr_idx = b2 >> 4, (b2 >> 2) & 3
    if version == 1 or layer == 4 or br_idx in (0, 15) or sr_idx == 3:
        return None  # reserved values, or free format (no length in the header)
    mpeg1 = version == 3
    rate = _MP3_RATES[version][sr_idx]
    kbps = _MP3_BITRATES[(mpeg1, layer) if layer != 3 or mpeg1 else (False, 3)][br_idx]
    pad = (b2 >> 1) & 1
    if layer == 1:
        return (12 * kbps * 1000 // rate + pad) * 4, 384, rate, (b3 >> 6) == 3, version
    spf = 1152 if (layer == 2 or mpeg1) else 576
    return spf // 8 * kbps * 1000 // rate + pad, spf, rate, (b3 >> 6) == 3, version


def _xing_frames(m: Any, pos: int, size: int, head: tuple[int, int, int, bool, int]) -> int | None:
    n, _spf, _rate, mono, version = head
    side = (17 if mono else 32) if version == 3 else (9 if mono else 17)
    off = pos + 4 + side
    tag = m[off:off + 4]
    if tag in (b"Xing", b"Info") and off + 12 <= size:
        flags = int.from_bytes(m[off + 4:off + 8], "big")
        if flags & 1:
            return int.from_bytes(m[off + 8:off + 12], "big")
    off = pos + 36  # VBRI (Fraunhofer)
    if m[off:off + 4] == b"VBRI" and off + 18 <= size:
        return int.from_bytes(m[off + 14:off + 18], "big")
    return None


def _mpeg_audio_frames(m: Any, size: int) -> str | None:
    """MPEG audio frames: the last one whole; as many as a Xing/Info/VBRI header counts."""
    pos = _id3v2_end(m, size)
    frames = 0
    declared = None
    spf = rate = 0
    while pos < size:
        if pos + 4 > size:
            if m[pos] == 0xFF:
                return f"MPEG audio frame {frames + 1} header at byte {pos} is cut off at byte {size}"
            break
        head = _mp3_header(m, pos)
        if head is None:
            if _trailing_tag(m, pos, size):
                break
            # junk between frames: resynchronise on two chained headers, as decoders do
            nxt = _mp3_resync(m, pos + 1, size)
            if nxt is None:
                break
            pos = nxt
            continue
        n, spf, rate = head[0], head[1], head[2]
        if frames == 0 and declared is None:
            declared = _xing_frames(m, pos, size, head)
            if declared is not None:  # the Xing/Info frame itself holds no audio
                if pos + n > size:
                    return f"the Xing/Info frame at byte {pos} is cut off at byte {size}"
                pos += n
                continue
        if pos + n > size:
            return (f"MPEG audio frame {frames + 1} at byte {pos} needs {n} bytes, the file ends "
                    f"{size - pos} bytes into it")
        frames += 1
        pos += n
    # writers differ on whether the count includes the Xing/Info frame itself: one frame of slack
    if declared is not None and frames < declared - 1:
        return (f"the Xing/Info header counts {declared} MPEG audio frames, "
                f"{declared * spf / rate:.3f} s; the file holds {frames}, {frames * spf / rate:.3f} s")
    return None


def _mp3_resync(m: Any, pos: int, size: int) -> int | None:
    limit = min(size - 4, pos + 65536)
    while pos < limit:
        pos = m.find(b"\xff", pos, limit)
        if pos < 0:
            return None
        head = _mp3_header(m, pos)
        if head is not None and (pos + head[0] + 4 > size or _mp3_header(m, pos + head[0]) is not None):
            return pos
        pos += 1
    return None


def _flac_metadata(m: Any, size: int) -> str | None:
    if size < 4 or m[0:4] != b"fLaC":
        return None
    pos = 4
    while True:
        if pos + 4 > size:
            return f"the FLAC metadata block header at byte {pos} is cut off at byte {size}"
        last = m[pos] & 0x80
        n = int.from_bytes(m[pos + 1:pos + 4], "big")
        if pos + 4 + n > size:
            return (f"the FLAC metadata block at byte {pos} needs {n + 4} bytes, the file ends "
                    f"{size - pos} bytes into it")
        pos += 4 + n
        if last:
            break
    if pos >= size:
        return "the FLAC file ends after its metadata, before the first audio frame"
    return None


def _ts_packets(m: Any, size: int) -> str | None:
    """MPEG-TS: a whole number of packets; the last PES packet of each stream
    that declares its length is complete."""
    psize = offset = 0
    for ps, off in ((188, 0), (192, 4), (204, 0)):
        if all(off + k * ps < size and m[off + k * ps] == 0x47 for k in range(min(5, max(1, (size - off) // ps)))):
            psize, offset = ps, off
            break
    if not psize:
        return None
    first = 0
    whole, rest = divmod(size - first, psize)
    if rest:
        return (f"the file ends {rest} bytes into {psize}-byte MPEG-TS packet {whole + 1}, "
                f"at byte {first + whole * psize}")
    # walk back from the end, collecting payload bytes per PID until its last PES start
    have: dict[int, int] = {}
    done: set[int] = set()
    stop = max(first, size - TS_TAIL_BYTES)
    pos = first + (whole - 1) * psize
    while pos >= stop:
        p = pos + offset
        if m[p] != 0x47:
            return None
        pid = ((m[p + 1] & 0x1F) << 8) | m[p + 2]
        pos -= psize
        if pid == 0x1FFF or pid in done:
            continue
        afc = (m[p + 3] >> 4) & 3
        start = p + 4
        if afc & 2:
            start += 1 + m[p + 4]
        end = p + 188
        if not afc & 1 or start >= end:
            continue
        have[pid] = have.get(pid, 0) + (end - start)
        if m[p + 1] & 0x40:  # payload unit start: a PES header (or a PSI section) begins here
            done.add(pid)
            if m[start:start + 3] != b"\x00\x00\x01":
                continue
            n = int.from_bytes(m[start + 4:start + 6], "big")
            if n and have[pid] < n + 6:
                return (f"the last PES packet of MPEG-TS stream PID {pid}, starting in the packet at byte "
                        f"{p - offset}, needs {n + 6} bytes, the file holds {have[pid]}")
    return None


#: (FFmpeg demuxer names, byte walk) pairs
_WALKS: tuple[tuple[frozenset[str], Callable[[Any, int], str | None]], ...] = (
    (frozenset({"mov", "mp4", "m4a", "3gp", "3g2", "mj2"}), _iso_boxes),
    (frozenset({"wav", "avi"}), _riff_chunks),
    (frozenset({"aiff"}), _aiff_form),
    (frozenset({"matroska", "webm"}), _ebml_segment),
    (frozenset({"ogg"}), _ogg_pages),
    (frozenset({"aac"}), _adts_frames),
    (frozenset({"mp3"}), _mpeg_audio_frames),
    (frozenset({"flac"}), _flac_metadata),
    (frozenset({"mpegts"}), _ts_packets),
)


def check_structure(path: str, container: Any) -> None:
    """Raise the :func:`truncated_error` of :func:`structure_damage`, if any,
    with what the headers declare and what a demux pass (no decoding) finds."""
    fmt = container.format.name
    damage = structure_damage(path, fmt)
    if damage is None:
        return
    streams = list(container.streams.audio) or list(container.streams)
    if not streams:
        raise truncated_error(path, "a complete media file", "no streams", damage)
    s = streams[0]
    declared = declared_duration(path, fmt, s)
    if declared is None:
        expected = f"a complete {_KIND_NAMES.get(fmt, fmt)} file"
    else:
        expected = f"{fmt_seconds(declared[0])} of {s.type} stream #{s.index} ({declared[1]})"
    tally = StreamTally(s.index, s.type)
    try:
        with av.open(path, "r") as c:
            for packet in c.demux(c.streams[s.index]):
                tally.add(packet)
    except (av.FFmpegError, OSError, ValueError):
        pass  # the packets read before the error are what the file holds
    raise truncated_error(path, expected, tally.describe(), damage)


_KIND_NAMES = {
    "mov,mp4,m4a,3gp,3g2,mj2": "MP4/MOV", "wav": "WAV", "avi": "AVI", "aiff": "AIFF", "matroska,webm": "Matroska/WebM",
    "ogg": "Ogg", "aac": "ADTS AAC", "mp3": "MP3", "flac": "FLAC", "mpegts": "MPEG-TS",
}


def declared_duration(path: str, container_format: str, stream: Any) -> tuple[float, str] | None:
    """(seconds, where it is declared) of *stream* where a header states it
    reliably: WAV data size, FLAC STREAMINFO, AIFF COMM, the MP4 sample table,
    the Matroska DURATION tag or segment duration; else None."""
    fmt = set(container_format.split(","))
    tb = stream.time_base
    cc = stream.codec_context
    if "wav" in fmt and cc is not None and cc.sample_rate:
        n = wav_declared_frames(path)
        return None if n is None else (n / cc.sample_rate, "the WAV data chunk size")
    where = ("the MP4 sample table" if fmt & {"mov", "mp4"} else "the FLAC STREAMINFO block" if "flac" in fmt
             else "the AIFF COMM chunk" if "aiff" in fmt else None)
    if where and stream.duration and tb:
        return float(stream.duration * tb), where
    if fmt & {"matroska", "webm"}:
        tag = next((v for k, v in stream.metadata.items() if k.upper() == "DURATION"), None)
        secs = parse_hms(tag) if tag else None
        if secs is not None:
            return secs, "the Matroska DURATION tag"
        c = stream.container
        if c is not None and c.duration:
            return c.duration / 1_000_000, "the Matroska segment duration"
    return None


# ---------------------------------------------------------------------------
# declared lengths
# ---------------------------------------------------------------------------


@dataclass
class StreamTally:
    """What the demuxer delivered for one stream: non-empty packets, corrupt
    ones, and the presentation end of the latest packet."""

    index: int
    kind: str
    packets: int = 0
    corrupt_at: float | None = None  #: seconds of the first packet flagged corrupt
    end: Fraction | None = None  #: max(pts + duration) in seconds
    start: Fraction | None = None  #: min(pts) in seconds

    def add(self, packet: Any) -> None:
        if not packet.size:
            return
        self.packets += 1
        tb = packet.time_base
        if packet.pts is not None and tb is not None:
            t = packet.pts * tb
            if self.start is None or t < self.start:
                self.start = t
            e = (packet.pts + (packet.duration or 0)) * tb
            if self.end is None or e > self.end:
                self.end = e
        if packet.is_corrupt and self.corrupt_at is None:
            self.corrupt_at = float(packet.pts * tb) if packet.pts is not None and tb is not None else -1.0

    def found_seconds(self) -> float | None:
        if self.end is None:
            return None
        return float(self.end - (self.start or 0))

    def describe(self) -> str:
        t = self.found_seconds()
        dur = f"{t:.3f} s in " if t is not None else ""
        return f"{dur}{self.packets} packet(s) of {self.kind} stream #{self.index}"


def check_packets(path: str, container_format: str, stream: Any, tally: StreamTally) -> None:
    """MediaError if the demuxer flagged a packet of *stream* corrupt, or if the
    MP4/MOV sample table lists more samples than were found."""
    kinds = set(container_format.split(","))
    if tally.corrupt_at is not None:
        at = f" at {tally.corrupt_at:.3f} s" if tally.corrupt_at >= 0 else ""
        raise truncated_error(path, f"complete packets in {stream.type} stream #{stream.index}",
                              f"a packet{at} the demuxer marks as incomplete or corrupt "
                              f"after {tally.describe()}")
    if not kinds & {"mov", "mp4"}:
        return
    # the demuxer's index (the sample table after edit lists; PCM samples grouped in chunks)
    entries = stream.index_entries
    expected = len(entries) if entries is not None else stream.frames
    if expected and tally.packets < expected and entries is not None:
        expected = sum(1 for e in entries if e.size)  # empty samples come out as no packet
    if not expected or tally.packets >= expected:
        return
    declared = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
    raise truncated_error(path, f"{fmt_seconds(declared)} in {expected} packet(s) of {stream.type} "
                                f"stream #{stream.index} (the MP4 sample table)", tally.describe())


def declared_length(path: str, container_format: str, codec: str, rate: int, stream_duration: int | None,
                    time_base: Fraction | None, metadata: dict[str, str], start: float | None,
                    max_frame: int) -> tuple[int, int, str] | None:
    """(samples the headers promise, tolerance in samples, where it is declared)
    where a header states the length reliably: the WAV ``data`` chunk size, FLAC
    STREAMINFO, AIFF COMM, the Matroska/WebM per-track DURATION tag and the Ogg
    last-page granule position (tolerance for these two: two codec frames + 10 ms,
    for codec delay and padding); else None."""
    fmt = set(container_format.split(","))
    if "wav" in fmt:
        n = wav_declared_frames(path)
        return None if n is None else (n, 0, "the WAV data chunk size")
    if ("flac" in fmt and codec == "flac") or ("aiff" in fmt and codec.startswith("pcm_")):
        if stream_duration and time_base:
            where = "the FLAC STREAMINFO block" if "flac" in fmt else "the AIFF COMM chunk"
            return round(stream_duration * time_base * rate), 0, where
        return None
    if fmt & {"matroska", "webm"}:
        tag = next((v for k, v in metadata.items() if k.upper() == "DURATION"), None)
        secs = parse_hms(tag) if tag else None
        if secs is None:
            return None
        return (round((secs - (start or 0.0)) * rate), 2 * max(max_frame, 1) + round(0.01 * rate),
                "the Matroska DURATION tag")
    if "ogg" in fmt and stream_duration and time_base:
        # FFmpeg reads the granule position of the stream's last page (the structure walk has
        # checked that the file ends on it); a page lost inside the file (bad CRC) shows here.
        # Tolerance as for Matroska: the Opus pre-skip and end trimming are within it
        return (round(stream_duration * time_base * rate), 2 * max(max_frame, 1) + round(0.01 * rate),
                "the granule position of its last Ogg page")
    return None


def parse_hms(text: str) -> float | None:
    """'HH:MM:SS.fffffffff' -> seconds."""
    try:
        h, m, sec = text.strip().split(":")
        return int(h) * 3600 + int(m) * 60 + float(sec)
    except (ValueError, AttributeError):
        return None


def wav_declared_frames(path: str) -> int | None:
    """Sample frames declared by a RIFF/WAVE ``data`` chunk, or None when the
    header does not say (RF64, streaming sizes 0 / 0xFFFFFFFF, unparsable)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            block_align = None
            for _ in range(64):  # bounded chunk walk
                hdr = fh.read(8)
                if len(hdr) < 8:
                    return None
                cid, size = hdr[:4], int.from_bytes(hdr[4:], "little")
                if cid == b"fmt ":
                    body = fh.read(min(size, 64))
                    if len(body) < 14:
                        return None
                    block_align = int.from_bytes(body[12:14], "little")
                    fh.seek(size - len(body) + (size & 1), 1)
                elif cid == b"data":
                    if not block_align or size in (0, 0xFFFFFFFF):
                        return None
                    return size // block_align
                else:
                    fh.seek(size + (size & 1), 1)
    except OSError:
        return None
    return None
