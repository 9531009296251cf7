"""Loading of dev-set style evaluation corpora.

A corpus directory holds ``manifest.csv`` with at least the columns ``id``,
``kind``, ``clean``, ``noisy`` and ``snr_db``; ``clean`` and ``noisy`` are
paths relative to the directory.  See ``shared/corpus/dev/README.md``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mediacore.errors import FormatError, MediaError

__all__ = ["KINDS", "Clip", "load_corpus", "load_audio"]

#: Clip kinds a manifest may use.
KINDS = ("noisy", "clean-only", "noise-only")

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
        Nominal input SNR; None unless ``kind == "noisy"``.
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
