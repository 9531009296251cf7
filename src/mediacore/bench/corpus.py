"""Loading of evaluation corpora.

Four layouts, told apart by :func:`detect_layout` and read by :func:`read_corpus`:

``manifest``
    The dev-set layout: ``manifest.csv`` with at least the columns ``id``,
    ``kind``, ``clean``, ``noisy`` and ``snr_db``; ``clean`` and ``noisy`` are
    paths relative to the directory.  See ``shared/corpus/dev/README.md``
    (:func:`load_corpus`).
``voicebank``
    VoiceBank-DEMAND: ``clean_testset_wav/`` and ``noisy_testset_wav/`` (any
    ``clean_*``/``noisy_*`` folder pair), files matched by name; the SNR is
    read from ``log_testset.txt`` when there is one (``p232_001 living 17.5``)
    (:func:`read_voicebank`).
``dns``
    DNS-Challenge test folders: ``noisy/`` and ``clean/``, matched by the
    ``fileid_N`` part of the names; the SNR from ``snrN`` in the noisy name
    (:func:`read_dns`).
``folder``
    A plain folder of noisy files, no reference: kind ``unreferenced``,
    scored with reference-free metrics only (DNSMOS) (:func:`read_folder`).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mediacore.errors import FormatError, MediaError

__all__ = ["KINDS", "ALL_KINDS", "LAYOUTS", "AUDIO_EXTENSIONS", "Clip", "load_corpus", "load_audio",
           "read_corpus", "detect_layout", "read_voicebank", "read_dns", "read_folder", "file_sha256"]

#: Clip kinds a manifest may use.
KINDS = ("noisy", "clean-only", "noise-only")
#: Every clip kind: a plain folder of noisy files gives ``unreferenced`` clips (no clean reference).
ALL_KINDS = (*KINDS, "unreferenced")
#: Corpus layouts :func:`read_corpus` understands.
LAYOUTS = ("manifest", "voicebank", "dns", "folder")
#: File extensions taken as audio by the folder readers.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".aac", ".webm", ".mka", ".mp4")

_REQUIRED_COLUMNS = ("id", "kind", "clean", "noisy", "snr_db")


@dataclass(frozen=True)
class Clip:
    """One evaluation clip.

    Attributes
    ----------
    id : str
        Clip id from the manifest (``n00``, ``c03``, ``z05`` ...).
    kind : str
        ``"noisy"``, ``"clean-only"`` or ``"noise-only"``.
    noisy_path : Path
        System input.
    clean_path : Path or None
        Clean reference; None for noise-only clips.
    snr_db : float or None
        Nominal input SNR; None unless ``kind == "noisy"`` (and None there when
        the corpus does not say).
    """

    id: str
    kind: str
    noisy_path: Path
    clean_path: Path | None
    snr_db: float | None

    @property
    def has_speech(self) -> bool:
        """True when the clip has a clean speech reference."""
        return self.clean_path is not None

    def load_noisy(self) -> tuple[np.ndarray, int]:
        """Read the system input as float32 mono; returns ``(x, sample_rate)``."""
        return load_audio(self.noisy_path)

    def load_clean(self) -> tuple[np.ndarray, int]:
        """Read the clean reference as float32 mono; returns ``(x, sample_rate)``."""
        if self.clean_path is None:
            raise FormatError(f"clip {self.id!r} ({self.kind}) has no clean reference")
        return load_audio(self.clean_path)


def load_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Read an audio file with soundfile as float32 mono (channels averaged).

    Returns
    -------
    x : ndarray, float32, shape (n,)
    sample_rate : int
    """
    import soundfile as sf  # core dependency, imported here to keep `import bench` light

    path = Path(path)
    if not path.is_file():
        raise MediaError(f"audio file not found: {path}")
    try:
        x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as exc:  # libsndfile reports corrupt files this way
        raise MediaError(f"cannot read audio file {path}: {exc}") from exc
    if x.shape[0] == 0:
        raise FormatError(f"audio file {path} has no samples")
    x = x.mean(axis=1, dtype=np.float32) if x.shape[1] > 1 else x[:, 0]
    return np.ascontiguousarray(x, dtype=np.float32), int(sr)


def _optional(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def load_corpus(path: str | Path) -> list[Clip]:
    """Read ``manifest.csv`` of a corpus directory.

    Parameters
    ----------
    path : str or Path
        Corpus directory (or the manifest file itself).

    Returns
    -------
    list of Clip
        In manifest order.

    Raises
    ------
    MediaError
        The manifest or an audio file it names does not exist.
    FormatError
        Missing columns, an unknown kind, a duplicate id, or a row whose
        fields do not fit its kind.
    """
    path = Path(path)
    manifest = path if path.is_file() else path / "manifest.csv"
    if not manifest.is_file():
        raise MediaError(f"no manifest.csv in corpus directory {path}")
    root = manifest.parent

    with open(manifest, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in _REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise FormatError(f"{manifest}: missing column(s) {', '.join(missing)}; "
                              f"expected at least {', '.join(_REQUIRED_COLUMNS)}")
        rows = list(reader)
    if not rows:
        raise FormatError(f"{manifest}: no clips")

    clips: list[Clip] = []
    seen: set[str] = set()
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        where = f"{manifest}:{line}"
        cid = (row["id"] or "").strip()
        kind = (row["kind"] or "").strip()
        if not cid:
            raise FormatError(f"{where}: empty id")
        if cid in seen:
            raise FormatError(f"{where}: duplicate id {cid!r}")
        seen.add(cid)
        if kind not in KINDS:
            raise FormatError(f"{where}: clip {cid!r} has unknown kind {kind!r}; "
                              f"expected one of {', '.join(KINDS)}")

        noisy_rel = _optional(row["noisy"])
        clean_rel = _optional(row["clean"])
        snr_txt = _optional(row["snr_db"])
        if noisy_rel is None:
            raise FormatError(f"{where}: clip {cid!r} has no noisy (input) file")
        if kind == "noise-only":
            clean_rel = None  # no speech: a listed clean file would be meaningless
        elif clean_rel is None:
            raise FormatError(f"{where}: {kind} clip {cid!r} needs a clean file")

        snr: float | None = None
        if kind == "noisy":
            if snr_txt is None:
                raise FormatError(f"{where}: noisy clip {cid!r} has no snr_db")
            try:
                snr = float(snr_txt)
            except ValueError:
                raise FormatError(f"{where}: clip {cid!r} snr_db {snr_txt!r} is not a number") from None

        noisy_path = root / noisy_rel
        clean_path = root / clean_rel if clean_rel is not None else None
        for p in (noisy_path, clean_path):
            if p is not None and not p.is_file():
                raise MediaError(f"{where}: clip {cid!r}: file not found: {p}")
        clips.append(Clip(cid, kind, noisy_path, clean_path, snr))
    return clips


# --------------------------------------------------------------------------- other layouts


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            block = fh.read(chunk)
            if not block:
                return h.hexdigest()
            h.update(block)


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)


def _voicebank_dirs(path: Path) -> tuple[Path, Path] | None:
    """The (clean, noisy) folder pair of a VoiceBank-DEMAND tree, the test set preferred."""
    for clean_name, noisy_name in (("clean_testset_wav", "noisy_testset_wav"),
                                   ("clean_testset_wav_16k", "noisy_testset_wav_16k")):
        if (path / clean_name).is_dir() and (path / noisy_name).is_dir():
            return path / clean_name, path / noisy_name
    for clean in sorted(path.glob("clean_*")):
        noisy = path / ("noisy_" + clean.name[len("clean_"):])
        if clean.is_dir() and noisy.is_dir():
            return clean, noisy
    return None


def detect_layout(path: str | Path) -> str:
    """Which of :data:`LAYOUTS` the corpus at ``path`` is (a manifest file counts as ``manifest``)."""
    path = Path(path)
    if path.is_file():
        if path.name.endswith(".csv"):
            return "manifest"
        raise FormatError(f"{path}: a corpus is a directory (or its manifest.csv)")
    if not path.is_dir():
        raise MediaError(f"corpus directory not found: {path}")
    if (path / "manifest.csv").is_file():
        return "manifest"
    if _voicebank_dirs(path) is not None:
        return "voicebank"
    if (path / "noisy").is_dir() and (path / "clean").is_dir():
        return "dns"
    return "folder"


def read_corpus(path: str | Path, layout: str = "auto") -> list[Clip]:
    """Read a corpus of any of :data:`LAYOUTS` (``"auto"``: :func:`detect_layout`)."""
    if layout == "auto":
        layout = detect_layout(path)
    readers = {"manifest": load_corpus, "voicebank": read_voicebank, "dns": read_dns, "folder": read_folder}
    if layout not in readers:
        raise FormatError(f"unknown corpus layout {layout!r}; expected auto or one of {', '.join(LAYOUTS)}")
    return readers[layout](path)


def _voicebank_snrs(root: Path) -> dict[str, float]:
    """``{utterance: snr}`` from VoiceBank-DEMAND's ``log_testset.txt`` (lines ``p232_001 living 17.5``)."""
    snrs: dict[str, float] = {}
    logs = sorted(root.glob("log_testset*.txt")) + sorted(root.glob("logfiles/log_testset*.txt"))
    for log in logs[:1]:
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split()
            if len(parts) >= 3:
                try:
                    snrs[parts[0]] = float(parts[-1])
                except ValueError:
                    continue
    return snrs


def read_voicebank(path: str | Path) -> list[Clip]:
    """VoiceBank-DEMAND: ``clean_testset_wav/NAME.wav`` and ``noisy_testset_wav/NAME.wav``.

    Every noisy file needs a clean file of the same name (kind ``noisy``);
    ``snr_db`` comes from ``log_testset.txt`` in the folder (or in
    ``logfiles/``) when present, else None.
    """
    path = Path(path)
    dirs = _voicebank_dirs(path)
    if dirs is None:
        raise FormatError(f"{path}: no clean_testset_wav/ and noisy_testset_wav/ folders (VoiceBank-DEMAND)")
    clean_dir, noisy_dir = dirs
    snrs = _voicebank_snrs(path)
    clips = []
    for noisy in _audio_files(noisy_dir):
        clean = clean_dir / noisy.name
        if not clean.is_file():
            raise MediaError(f"VoiceBank-DEMAND: {noisy.name} has no clean file in {clean_dir}")
        clips.append(Clip(noisy.stem, "noisy", noisy, clean, snrs.get(noisy.stem)))
    if not clips:
        raise FormatError(f"{noisy_dir}: no audio files")
    return clips


_FILEID = re.compile(r"fileid_?(\d+)", re.IGNORECASE)
_SNR = re.compile(r"(?:^|[_-])snr(-?\d+(?:\.\d+)?)", re.IGNORECASE)


def read_dns(path: str | Path) -> list[Clip]:
    """DNS-Challenge test folders: ``noisy/*fileid_N.wav`` matched with ``clean/*fileid_N.wav``.

    The clip id is ``fileid_N``; ``snr_db`` is parsed from ``snrN`` in the
    noisy file name (None when absent).  Clips are in file-id order.
    """
    path = Path(path)
    noisy_dir, clean_dir = path / "noisy", path / "clean"
    if not noisy_dir.is_dir() or not clean_dir.is_dir():
        raise FormatError(f"{path}: a DNS-Challenge test folder has noisy/ and clean/ subfolders")

    def by_id(folder: Path) -> dict[int, Path]:
        out: dict[int, Path] = {}
        for f in _audio_files(folder):
            m = _FILEID.search(f.stem)
            if m is None:
                raise FormatError(f"{f}: no fileid_N in the name (DNS-Challenge layout)")
            fid = int(m.group(1))
            if fid in out:
                raise FormatError(f"{folder}: fileid {fid} appears twice ({out[fid].name}, {f.name})")
            out[fid] = f
        return out

    noisy, clean = by_id(noisy_dir), by_id(clean_dir)
    if not noisy:
        raise FormatError(f"{noisy_dir}: no audio files")
    missing = sorted(set(noisy) - set(clean))
    if missing:
        raise MediaError(f"{clean_dir}: no clean file for fileid(s) {', '.join(map(str, missing[:10]))}")
    clips = []
    for fid in sorted(noisy):
        m = _SNR.search(noisy[fid].stem)
        clips.append(Clip(f"fileid_{fid}", "noisy", noisy[fid], clean[fid], float(m.group(1)) if m else None))
    return clips


def read_folder(path: str | Path) -> list[Clip]:
    """Every audio file of a folder (not recursive) as an ``unreferenced`` clip; the id is the file stem."""
    path = Path(path)
    if not path.is_dir():
        raise MediaError(f"corpus directory not found: {path}")
    files = _audio_files(path)
    if not files:
        raise FormatError(f"{path}: no audio files ({', '.join(AUDIO_EXTENSIONS)})")
    stems = [f.stem for f in files]
    dup = len(set(stems)) != len(stems)
    return [Clip(f.name if dup else f.stem, "unreferenced", f, None, None) for f in files]
