"""A corpus of damaged and unusual media files, and a runner that puts each
through ``mediacore clean`` and says whether the outcome is one of the two
allowed ones.

Every file is made here from generated tones (PyAV + numpy, no external
tools): a valid *base* file per format and variant (rates, channel counts,
sample depths, chapters, several tracks, variable packet sizes, empty and
missing audio), and damaged copies of them (cut at many byte offsets, bits
flipped in the header and in the payload).

:func:`run_case` runs ``mediacore clean IN -o OUT --quiet`` on one file (in
this process through :func:`mediacore.cli.main`, or as a child process) and
classifies the outcome as exactly one of

* ``"complete"``: exit 0 and an output whose audio streams have the base
  file's duration (within :data:`DURATION_TOLERANCE_S`), rate, channel count,
  codec family and sample depth, and whose video packets are byte for byte
  those of the input, as many as the base file has;
* ``"refused"``: exit 1, one message that names the input file and says what
  was expected and what was found, and no output file;

or ``"FAIL"`` with the reason (exit 0 with a short or altered output, another
exit code, a traceback, a vague message, a file left behind).  Every run also
checks that the output folder holds nothing but the output.

``python benchmarks/corrupt_media.py`` runs the whole corpus; tests/ runs
:data:`FAST_SUBSET`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import random
import re
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from mediacore.io._av import float_to_frame
from mediacore.io.read import codec_bits

#: an output's audio may differ from the base file's duration by this much (seconds)
DURATION_TOLERANCE_S = 0.0005
#: a lossy output (or one made from lossy input) may be longer by this many samples: decoded here
#: with FFmpeg alone, frames of end padding (and in ADTS, MPEG-TS and AVI, which cannot mark it,
#: encoder priming) remain; never shorter
LOSSY_END_PADDING = 3 * 1152
LOSSLESS = {"pcm", "flac", "alac"}

_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


# ---------------------------------------------------------------------------
# generated media
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Track:
    codec: str  #: FFmpeg encoder
    rate: int = 48000
    channels: int = 2


@dataclass(frozen=True)
class Base:
    """A valid file: its audio tracks, optional video, options."""

    name: str
    ext: str
    tracks: tuple[Track, ...]
    video: str | None = None
    seconds: float = 1.0
    options: tuple[tuple[str, str], ...] = ()
    chapters: int = 0
    #: packet sizes cycled through for encoders without a fixed frame size (PCM, FLAC)
    frame_sizes: tuple[int, ...] = (1024,)
    #: extra ``mediacore clean`` arguments (a codec this build can write, for inputs it cannot write back)
    args: tuple[str, ...] = ()


def tones(n: int, rate: int, channels: int, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / rate
    return np.asarray([0.3 * np.sin(2 * np.pi * (220 + 110 * c) * t) + 0.1 * np.sin(2 * np.pi * 1234 * t + c)
                       + 0.02 * rng.standard_normal(n) for c in range(channels)], dtype=np.float32)


def make_base(base: Base, path: Path) -> None:
    """Write *base* to *path*: audio (and video) interleaved in time order."""
    with av.open(str(path), "w", options=dict(base.options)) as oc:
        vs = None
        if base.video:
            vs = oc.add_stream(base.video, rate=25)
            vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        streams = []
        for k, tr in enumerate(base.tracks):
            a = oc.add_stream(tr.codec, rate=tr.rate)
            a.layout = _LAYOUTS[tr.channels]
            if tr.codec == "vorbis":
                a.codec_context.options = {"strict": "experimental"}
            a.codec_context.open()
            n = int(round(base.seconds * tr.rate))
            streams.append((a, tones(n, tr.rate, tr.channels, seed=3 + k), tr))
        if base.chapters:
            step = base.seconds / base.chapters
            oc.set_chapters([{"id": i + 1, "start": int(i * step * 1000), "end": int((i + 1) * step * 1000),
                              "time_base": Fraction(1, 1000), "metadata": {"title": f"Part {i + 1}"}}
                             for i in range(base.chapters)])
        oc.start_encoding()  # the header is written even when no packet follows (an empty stream)
        nv = int(base.seconds * 25) if vs else 0
        vi = 0
        # (time, stream number, start sample, length) of every audio frame, muxed in time order
        events = []
        for s, (a, x, tr) in enumerate(streams):
            fixed = a.codec_context.frame_size
            i, j = 0, 0
            while i < x.shape[1]:
                m = fixed or base.frame_sizes[j % len(base.frame_sizes)]
                events.append((i / tr.rate, s, i, m))
                i, j = i + m, j + 1
        events.sort()
        for t, s, i, m in events:
            while vs is not None and vi < nv and vi / 25 <= t:
                img = np.full((48, 64, 3), (vi * 9) % 255, np.uint8)
                img[:, : vi % 64] = 255 - img[:, : vi % 64]
                vf = av.VideoFrame.from_ndarray(img, format="rgb24")
                vf.pts, vf.time_base = vi, Fraction(1, 25)
                oc.mux(vs.encode(vf))
                vi += 1
            a, x, tr = streams[s]
            cc = a.codec_context
            f = float_to_frame(x[:, i:i + m], cc.format.name, cc.layout.name, tr.rate)
            f.pts, f.time_base = i, Fraction(1, tr.rate)
            oc.mux(a.encode(f))
        for a, _, _ in streams:
            oc.mux(a.encode(None))
        if vs is not None:
            while vi < nv:
                vf = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
                vf.pts, vf.time_base = vi, Fraction(1, 25)
                oc.mux(vs.encode(vf))
                vi += 1
            oc.mux(vs.encode(None))


def _b(name: str, ext: str, *tracks: Track, **kw: Any) -> Base:
    return Base(name, ext, tuple(tracks), **kw)


_FAST = (("movflags", "+faststart"),)

#: one valid file per container and codec ``mediacore clean`` reads
FORMATS: tuple[Base, ...] = (
    _b("wav", ".wav", Track("pcm_s16le")),
    _b("flac", ".flac", Track("flac")),
    _b("mp3", ".mp3", Track("libmp3lame", 44100)),
    _b("vorbis", ".ogg", Track("vorbis", 44100), args=("--codec", "flac")),  # no stable Vorbis encoder here
    _b("opus", ".ogg", Track("libopus")),
    _b("m4a", ".m4a", Track("aac", 44100), options=_FAST),
    _b("mp4", ".mp4", Track("aac"), video="libx264", options=_FAST),
    _b("mkv", ".mkv", Track("libopus"), video="libx264"),
    _b("webm", ".webm", Track("libopus"), video="libvpx"),
    _b("mov", ".mov", Track("aac"), video="libx264", options=_FAST),
    _b("ts", ".ts", Track("aac"), video="libx264"),
    _b("avi", ".avi", Track("libmp3lame"), video="libx264"),
    _b("aiff", ".aiff", Track("pcm_s16be")),
    _b("aac", ".aac", Track("aac")),
)

#: unusual but valid files: rates, channel counts, depths, chapters, several tracks, packet sizes
VARIANTS: tuple[Base, ...] = (
    *(_b(f"wav_{r}", ".wav", Track("pcm_s16le", r, 1)) for r in (8000, 11025, 22050, 96000, 192000)),
    _b("flac_96k_24bit", ".flac", Track("flac", 96000)),  # flac writes s32 -> 24-bit STREAMINFO below
    _b("flac_8k_mono", ".flac", Track("flac", 8000, 1)),
    *(_b(f"mp3_{r}", ".mp3", Track("libmp3lame", r, 1)) for r in (8000, 11025, 22050)),
    _b("opus_mono", ".opus", Track("libopus", 48000, 1)),
    _b("m4a_22050", ".m4a", Track("aac", 22050, 1), options=_FAST),
    _b("wav_u8", ".wav", Track("pcm_u8")),
    _b("wav_s24", ".wav", Track("pcm_s24le")),
    _b("wav_s32", ".wav", Track("pcm_s32le")),
    _b("wav_f32", ".wav", Track("pcm_f32le")),
    _b("aiff_s24", ".aiff", Track("pcm_s24be")),
    _b("aiff_s32", ".aiff", Track("pcm_s32be")),
    *(_b(f"wav_{c}ch", ".wav", Track("pcm_s16le", 48000, c)) for c in (1, 3, 4, 5, 6, 7, 8)),
    _b("flac_6ch", ".flac", Track("flac", 48000, 6)),
    _b("m4a_6ch", ".m4a", Track("aac", 48000, 6), options=_FAST),
    _b("opus_6ch", ".ogg", Track("libopus", 48000, 6)),
    _b("mkv_8ch_flac", ".mkv", Track("flac", 48000, 8)),
    _b("mp4_chapters", ".mp4", Track("aac"), video="libx264", options=_FAST, chapters=3),
    _b("mkv_chapters", ".mkv", Track("libopus"), video="libx264", chapters=3),
    _b("m4a_chapters", ".m4a", Track("aac"), options=_FAST, chapters=2),
    _b("ogg_chapters", ".ogg", Track("libopus"), chapters=2),
    _b("mkv_two_tracks", ".mkv", Track("libopus"), Track("flac", 48000, 1), video="libx264"),
    _b("mp4_two_tracks", ".mp4", Track("aac"), Track("aac", 48000, 1), video="libx264", options=_FAST),
    _b("mov_two_tracks", ".mov", Track("aac", 44100), Track("aac", 44100, 1), options=_FAST),
    _b("mkv_pcm_varframes", ".mkv", Track("pcm_s16le"), frame_sizes=(160, 1024, 37, 4096, 480)),
    _b("flac_varframes", ".flac", Track("flac"), frame_sizes=(4608, 1152, 576, 192)),
    _b("wav_varframes", ".wav", Track("pcm_s24le", 44100, 1), frame_sizes=(1, 7, 4000, 333)),
    _b("mp4_long_gop", ".mp4", Track("aac", 44100, 1), video="libx264", seconds=2.0, options=_FAST),
    _b("mp4_moov_at_end", ".mp4", Track("aac"), video="libx264"),
)


@dataclass(frozen=True)
class Case:
    """One file of the corpus: a base file, optionally damaged."""

    name: str
    base: Base
    #: None (the base file as made), ("cut", byte offset), ("flip", byte offset, bit), or a special kind
    damage: tuple | None = None

    @property
    def file_name(self) -> str:
        return f"{self.name}{self.base.ext}"


#: fractions of the file's length where copies are cut
CUT_FRACTIONS = (0.02, 0.1, 0.25, 0.5, 0.75, 0.9, 0.98)


def build_cases(*, seed: int = 19) -> list[Case]:
    """The whole corpus (the byte offsets of cuts and flips are fixed later, from
    each base file's size, by :func:`materialize`)."""
    cases: list[Case] = []
    for b in (*FORMATS, *VARIANTS):
        cases.append(Case(b.name, b))
    for b in FORMATS:
        for f in CUT_FRACTIONS:
            cases.append(Case(f"{b.name}_cut{int(f * 100):02d}", b, ("cut", f)))
        cases.append(Case(f"{b.name}_cut_last_byte", b, ("cut", -1)))
        for k in range(2):
            cases.append(Case(f"{b.name}_flip_header{k}", b, ("flip", "header", seed + k)))
            cases.append(Case(f"{b.name}_flip_payload{k}", b, ("flip", "payload", seed + k)))
    by_name = {b.name: b for b in VARIANTS}
    for name in ("flac_96k_24bit", "wav_6ch", "mp4_chapters", "mkv_two_tracks", "mp4_moov_at_end", "wav_s24",
                 "m4a_6ch", "mkv_pcm_varframes"):
        for f in (0.33, 0.66, 0.95):
            cases.append(Case(f"{name}_cut{int(f * 100):02d}", by_name[name], ("cut", f)))
    special = [
        ("empty_file", FORMATS[0], ("empty",)),
        ("not_media", FORMATS[2], ("text",)),
        ("wav_zero_samples", FORMATS[0], ("zero_length",)),
        ("mkv_zero_length_audio", FORMATS[7], ("zero_length",)),
        ("mp4_zero_length_audio", FORMATS[6], ("zero_length",)),
        ("mp4_no_audio", FORMATS[6], ("no_audio",)),
        ("mkv_no_audio", FORMATS[7], ("no_audio",)),
        ("ogg_header_only", FORMATS[4], ("cut_after_headers",)),
        ("wav_header_only", FORMATS[0], ("cut_after_headers",)),
    ]
    cases += [Case(n, b, d) for n, b, d in special]
    return cases


#: the subset tests/ runs (about 25 files, well under a minute)
FAST_SUBSET = (
    "wav", "flac", "mp3", "opus", "m4a", "mp4", "mkv", "ts", "aiff", "aac",
    "wav_s24", "wav_8000", "flac_96k_24bit", "mp4_chapters", "mkv_two_tracks", "wav_6ch",
    "mp4_cut50", "mp3_cut50", "opus_cut90", "ts_cut75", "aac_cut_last_byte", "flac_cut98", "avi_cut90",
    "wav_flip_header0", "mp4_flip_payload0", "mkv_flip_header1",
    "wav_zero_samples", "mp4_no_audio", "empty_file",
)


def materialize(case: Case, directory: Path, cache: dict[str, Path] | None = None) -> Path:
    """Write the case's file into *directory*; base files are made once (*cache*)."""
    directory.mkdir(parents=True, exist_ok=True)
    cache = {} if cache is None else cache
    src = cache.get(case.base.name)
    if src is None:
        bdir = directory / "_bases"
        bdir.mkdir(exist_ok=True)
        src = bdir / f"{case.base.name}{case.base.ext}"
        if not src.exists():
            make_base(case.base, src)
        cache[case.base.name] = src
    dst = directory / case.file_name
    data = src.read_bytes()
    d = case.damage
    if d is None:
        out = data
    elif d[0] == "cut":
        out = data[:-1] if d[1] == -1 else data[: int(len(data) * d[1])]
    elif d[0] == "flip":
        rng = random.Random(f"{case.name}:{d[2]}")
        if d[1] == "header":
            pos = rng.randrange(0, min(len(data) // 20, 256) or 1)
        else:
            pos = rng.randrange(len(data) // 3, len(data) * 9 // 10)
        buf = bytearray(data)
        buf[pos] ^= 1 << rng.randrange(8)
        out = bytes(buf)
    elif d[0] == "empty":
        out = b""
    elif d[0] == "text":
        out = b"this is not a media file\n" * 40
    elif d[0] == "zero_length":
        make_base(Base(case.name, case.base.ext, case.base.tracks, video=case.base.video, seconds=0.0,
                       options=case.base.options), dst)
        return dst
    elif d[0] == "no_audio":
        make_base(Base(case.name, case.base.ext, (), video=case.base.video, options=case.base.options), dst)
        return dst
    elif d[0] == "cut_after_headers":
        out = data[: _header_end(data, case.base.ext)]
    else:  # pragma: no cover
        raise ValueError(f"unknown damage {d!r}")
    dst.write_bytes(out)
    return dst


def _header_end(data: bytes, ext: str) -> int:
    if ext == ".wav":
        return data.index(b"data") + 8
    # Ogg: the first two pages (OpusHead, OpusTags)
    pos = 0
    for _ in range(2):
        nseg = data[pos + 26]
        pos += 27 + nseg + sum(data[pos + 27: pos + 27 + nseg])
    return pos


# ---------------------------------------------------------------------------
# what a file holds
# ---------------------------------------------------------------------------


def family(codec: str) -> str:
    if codec.startswith("pcm_"):
        return "pcm"
    for fam in ("mp3", "aac", "opus", "vorbis", "flac", "alac"):
        if fam in codec:
            return fam
    return codec


@dataclass
class Probe:
    audio: list[dict] = field(default_factory=list)  #: per stream: rate, channels, samples, family, bits
    video: list[str] = field(default_factory=list)  #: per video stream: sha1 of its packets' bytes
    video_packets: list[int] = field(default_factory=list)
    error: str | None = None


def probe(path: Path) -> Probe:
    """Decode every audio stream to the end (samples counted) and hash every video stream's packets."""
    p = Probe()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with av.open(str(path)) as c:
                streams = [s for s in c.streams if s.type in ("audio", "video")]
                info = {}
                for s in streams:
                    if s.type == "audio":
                        info[s.index] = {"rate": s.codec_context.sample_rate, "channels": s.codec_context.channels,
                                         "samples": 0, "family": family(s.codec_context.name),
                                         "bits": codec_bits(s.codec_context.name, s.codec_context.extradata)}
                    else:
                        info[s.index] = [hashlib.sha1(), 0]
                for pkt in c.demux(streams):
                    s = pkt.stream
                    if s.type == "video":
                        if pkt.size:
                            info[s.index][0].update(bytes(pkt))
                            info[s.index][1] += 1
                        continue
                    for fr in pkt.decode():
                        info[s.index]["samples"] += fr.samples
                for s in streams:
                    if s.type == "audio":
                        p.audio.append(info[s.index])
                    else:
                        p.video.append(info[s.index][0].hexdigest())
                        p.video_packets.append(info[s.index][1])
    except Exception as exc:  # a damaged input: what could be read is kept
        p.error = f"{type(exc).__name__}: {exc}"
    return p


def truth(base: Base, path: Path) -> dict:
    """What a complete output of *base* must hold (from the generator, and the base file's video)."""
    pr = probe(path)
    exp_family = family(base.tracks[0].codec) if not base.args else family(base.args[base.args.index("--codec") + 1])
    return {"audio": [{"rate": t.rate, "channels": t.channels, "samples": int(round(base.seconds * t.rate)),
                       "family": exp_family if i == 0 else family(t.codec),
                       "bits": None if base.args and i == 0 else a["bits"], "lossless": family(t.codec) in LOSSLESS}
                      for i, (t, a) in enumerate(zip(base.tracks, pr.audio))],
            "video_packets": pr.video_packets}


# ---------------------------------------------------------------------------
# running clean
# ---------------------------------------------------------------------------


@dataclass
class Outcome:
    case: str
    kind: str  #: "complete", "refused" or "FAIL"
    rc: int | None
    message: str
    reason: str = ""
    seconds: float = 0.0


def _run_clean(src: Path, dst: Path, args: tuple[str, ...], subprocess_mode: bool) -> tuple[int, str]:
    argv = ["clean", str(src), "-o", str(dst), "--quiet", *args]
    if subprocess_mode:
        r = subprocess.run([sys.executable, "-m", "mediacore", *argv], capture_output=True, text=True)
        return r.returncode, r.stderr + r.stdout
    from mediacore.cli import main

    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out), warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        try:
            rc = main(argv)
        except Exception as exc:  # a traceback is a failure, reported as such
            import traceback

            return -1, err.getvalue() + "".join(traceback.format_exception(exc))
    text = err.getvalue() + out.getvalue() + "".join(f"warning: {x.message}\n" for x in w)
    return rc, text


def _names_expected_and_found(message: str, src: Path) -> str | None:
    if src.name not in message:
        return f"the message does not name {src.name}"
    low = message.lower()
    if "expected" not in low:
        return "the message does not say what was expected"
    if not re.search(r"\b(found|got|has|holds|is)\b", low):
        return "the message does not say what was found"
    if "Traceback" in message:
        return "a traceback"
    return None


def classify(case: Case, src: Path, out_dir: Path, want: dict, *, subprocess_mode: bool = False) -> Outcome:
    """Run clean on *src* into *out_dir* (which must be empty) and classify the outcome."""
    dst = out_dir / f"out_{case.name}{case.base.ext}"
    before = set(os.listdir(out_dir))
    t0 = time.perf_counter()
    rc, msg = _run_clean(src, dst, case.base.args, subprocess_mode)
    dt = time.perf_counter() - t0
    left = set(os.listdir(out_dir)) - before - {dst.name}
    o = Outcome(case.name, "FAIL", rc, msg.strip(), seconds=dt)
    if left:
        o.reason = f"left behind: {sorted(left)}"
    elif rc == 1:
        why = _names_expected_and_found(msg, src)
        if dst.exists():
            o.reason = "exit 1 but an output file exists"
        elif why:
            o.reason = why
        else:
            o.kind = "refused"
    elif rc == 0:
        o.reason = _check_output(dst, src, want)
        if not o.reason:
            o.kind = "complete"
    else:
        o.reason = f"exit {rc}"
    if dst.exists():
        dst.unlink()
    return o


def _check_output(dst: Path, src: Path, want: dict) -> str:
    if not dst.exists():
        return "exit 0 without an output file"
    got = probe(dst)
    if got.error:
        return f"output unreadable: {got.error}"
    if len(got.audio) != len(want["audio"]):
        return f"{len(got.audio)} audio stream(s) out, expected {len(want['audio'])}"
    for k, (g, e) in enumerate(zip(got.audio, want["audio"])):
        for key in ("rate", "channels", "family", "bits"):
            if e[key] is not None and g[key] != e[key]:
                return f"audio #{k}: {key} {g[key]!r}, expected {e[key]!r}"
        tol = DURATION_TOLERANCE_S * e["rate"] + 0.5
        extra = tol if e["lossless"] and g["family"] in LOSSLESS else LOSSY_END_PADDING
        if not -tol <= g["samples"] - e["samples"] <= extra:
            return (f"audio #{k}: {g['samples'] / e['rate']:.4f} s ({g['samples']} samples) out, expected "
                    f"{e['samples'] / e['rate']:.4f} s")
    if got.video_packets != want["video_packets"]:
        return f"video packets {got.video_packets}, expected {want['video_packets']}"
    if got.video != probe(src).video:
        return "video bytes differ from the input's"
    return ""


def run_corpus(directory: Path, *, names: tuple[str, ...] | None = None, subprocess_mode: bool = False,
               progress: bool = False) -> list[Outcome]:
    """Make the corpus (or the cases *names*) in *directory* and classify every case."""
    cases = build_cases()
    if names is not None:
        wanted = set(names)
        cases = [c for c in cases if c.name in wanted]
        missing = wanted - {c.name for c in cases}
        if missing:
            raise ValueError(f"no such cases: {sorted(missing)}")
    cache: dict[str, Path] = {}
    truths: dict[str, dict] = {}
    out_dir = directory / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for i, case in enumerate(cases):
        src = materialize(case, directory / "in", cache)
        if case.base.name not in truths:
            truths[case.base.name] = truth(case.base, cache[case.base.name])
        o = classify(case, src, out_dir, truths[case.base.name], subprocess_mode=subprocess_mode)
        results.append(o)
        if progress:
            print(f"[{i + 1}/{len(cases)}] {o.kind:8s} rc={o.rc} {case.file_name} {o.reason}", file=sys.stderr,
                  flush=True)
    return results
