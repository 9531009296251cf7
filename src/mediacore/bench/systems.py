"""The systems a benchmark compares, resolved by name in one registry.

:func:`resolve_system` turns a name into a :class:`System`:

``noisy``
    The input unchanged (the "no processing" row).
``dsp``
    Our default chain without AGC: ``default_chain(sample_rate=48000,
    num_channels=1, denoise="dsp", agc=False, **overrides)``.
any Denoise backend name
    ``Denoise(sample_rate=48000, backend=NAME, **options)``; the peer
    backends (``rnnoise``, ``dfn3``, ``webrtc``, ``speex``, ``noisereduce``,
    ``dtln``, ``nsnet2``)
    register themselves when ``mediacore.stages.denoise_peers`` is imported,
    which this module does if it exists.  ``options`` start from that
    module's ``BASELINE_OPTIONS`` (the peer settings of baseline.md: WebRTC
    level 2, DeepFilterNet without attenuation limit), then the overrides.
a peer of :mod:`mediacore.bench.peers`
    (``webrtc``, ``rnnoise``) when no Denoise backend of that name exists:
    a whole-clip callable, so only its RTF is measured (no per-frame cost).
an external directory (``NAME=DIR``)
    Files processed elsewhere (a conferencing app, another tool), matched to
    the clips by file name (same stem, any audio extension).  Each file is
    resampled to 48 kHz, its delay is found per clip by cross-correlation
    against the noisy input (+-``max_delay_ms``) and removed, and its level
    is matched to the input by least squares (one gain per clip); see
    :func:`align_external`.

Internal systems are streamed 10 ms (480 samples) at a time through a
fresh instance per clip, each call timed, then flushed; the output keeps
the system's delay, which the runner measures and compensates.
"""

from __future__ import annotations

import importlib
import importlib.util
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from mediacore.errors import FormatError, MediaError, ParameterError

__all__ = ["SAMPLE_RATE", "FRAME", "System", "resolve_system", "known_systems", "align_external",
           "load_audio_any", "stream_process", "parse_externals", "parse_overrides"]

SAMPLE_RATE = 48000
FRAME = 480  # 10 ms at 48 kHz

#: package whose version is part of a whole-clip peer's identity (cache key)
_PEER_PACKAGES = {"webrtc": "pywebrtc-audio", "rnnoise": "pyrnnoise"}


def _load_peer_backends() -> None:
    """Import ``mediacore.stages.denoise_peers`` if it exists (it registers the peer backends)."""
    if importlib.util.find_spec("mediacore.stages.denoise_peers") is not None:
        importlib.import_module("mediacore.stages.denoise_peers")


def _backend_names() -> tuple[str, ...]:
    from mediacore.stages.denoise import backend_names

    _load_peer_backends()
    return backend_names()


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


class _Identity:
    """A stage-like pass-through (``process`` / ``flush`` / ``latency``)."""

    latency = 0

    def process(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float32).copy()

    def flush(self) -> np.ndarray:
        return np.zeros(0, np.float32)


def stream_process(stage: Any, x: np.ndarray, frame: int = FRAME) -> tuple[np.ndarray, np.ndarray]:
    """Push ``x`` through ``stage`` ``frame`` samples at a time (last frame zero-padded), then flush.

    Returns ``(y, frame_seconds)``: the whole output (delay included) and
    the time of each ``process`` call.  ``flush`` is not timed.
    """
    x = np.asarray(x, dtype=np.float32)
    n_frames = -(-x.size // frame)
    buf = np.zeros(n_frames * frame, np.float32)
    buf[: x.size] = x
    frames = buf.reshape(n_frames, frame)
    outs = []
    times = np.empty(n_frames)
    clock = time.perf_counter
    for i in range(n_frames):
        t0 = clock()
        y = stage.process(frames[i])
        times[i] = clock() - t0
        outs.append(np.asarray(y).reshape(-1))
    tail = np.asarray(stage.flush())
    outs.append(tail.reshape(-1))
    return np.concatenate(outs).astype(np.float32, copy=False), times


@dataclass
class System:
    """One benchmarked system.

    Attributes
    ----------
    name : str
        Name in tables and in ``results.json``.
    kind : str
        ``reference`` (noisy), ``chain`` (dsp), ``backend`` (a Denoise
        backend), ``peer`` (whole-clip callable of ``bench.peers``) or
        ``external`` (a directory of processed files).
    description : str
        One line for the report.
    params : dict
        Everything that identifies its output besides the clip (cache key).
    """

    name: str
    kind: str
    description: str
    params: dict = field(default_factory=dict)
    _factory: Callable[[], Any] | None = None           # fresh stage-like object (streamed)
    _whole: Callable[[np.ndarray], np.ndarray] | None = None  # whole-clip callable
    external_dir: Path | None = None
    max_delay_ms: float = 1000.0

    @property
    def streamed(self) -> bool:
        """True when the system runs frame by frame (per-frame cost is measured)."""
        return self._factory is not None

    def make_stage(self) -> Any:
        if self._factory is None:
            raise ParameterError(f"system {self.name!r} is not streamed")
        return self._factory()

    def declared_latency(self) -> int | None:
        """The latency the system declares (samples at 48 kHz), None if it declares none."""
        if self._factory is None:
            return None
        if "_latency" not in self.__dict__:
            lat = getattr(self._factory(), "latency", None)
            self.__dict__["_latency"] = None if lat is None else int(lat)
        return self.__dict__["_latency"]

    def warm_up(self) -> None:
        """One short run so one-off costs (numba compilation, model loading) are not timed."""
        noise = np.random.default_rng(0).standard_normal(SAMPLE_RATE // 2).astype(np.float32) * 0.01
        if self._factory is not None:
            stream_process(self._factory(), noise)
        elif self._whole is not None:
            self._whole(noise)

    def run(self, x48: np.ndarray) -> dict[str, Any]:
        """Process one clip (internal systems): ``{"y", "seconds", "frame_seconds" (or None)}``."""
        if self._factory is not None:
            y, times = stream_process(self._factory(), x48)
            return {"y": y, "seconds": float(times.sum()), "frame_seconds": times}
        if self._whole is not None:
            t0 = time.perf_counter()
            y = np.asarray(self._whole(np.asarray(x48, np.float32)), dtype=np.float32).reshape(-1)
            return {"y": y, "seconds": time.perf_counter() - t0, "frame_seconds": None}
        raise ParameterError(f"system {self.name!r} ({self.kind}) is not run here; see align_external")

    def external_file(self, clip_path: Path, clip_id: str) -> Path:
        """The external file for a clip: same file name, else same stem (or clip id) with any audio extension."""
        from mediacore.bench.corpus import AUDIO_EXTENSIONS

        assert self.external_dir is not None
        direct = self.external_dir / clip_path.name
        if direct.is_file():
            return direct
        for stem in dict.fromkeys((clip_path.stem, clip_id)):
            for ext in AUDIO_EXTENSIONS:
                for cand in (self.external_dir / (stem + ext), self.external_dir / (stem + ext.upper())):
                    if cand.is_file():
                        return cand
        raise MediaError(f"external system {self.name!r}: no file for clip {clip_id!r} "
                         f"({clip_path.name}) in {self.external_dir}")


def load_audio_any(path: str | Path) -> tuple[np.ndarray, int]:
    """Mono float32 audio of any file: soundfile first, PyAV (``mediacore.io``) for the rest (m4a, mp4, opus ...)."""
    from mediacore.bench.corpus import load_audio

    try:
        return load_audio(path)
    except MediaError:
        if not Path(path).is_file():
            raise
    from mediacore.io.read import read_audio

    x, sr = read_audio(path)
    return np.ascontiguousarray(x.mean(axis=0), dtype=np.float32), int(sr)


def align_external(y: np.ndarray, sr_y: int, x48: np.ndarray, max_delay_ms: float = 1000.0
                   ) -> tuple[np.ndarray, int, float]:
    """Line an externally processed file up with the noisy input it was made from.

    ``y`` is resampled to 48 kHz; its lag behind ``x48`` is the peak of the
    cross-correlation within +-``max_delay_ms``; the shifted output is cut or
    zero-padded to the input length and scaled by the least-squares gain
    ``g = <x, y> / <y, y>`` (the gain that best matches it to the input).

    Returns ``(aligned, lag_samples, gain)``.
    """
    from mediacore.bench import metrics

    y48 = metrics.resample(np.asarray(y, np.float64), sr_y, SAMPLE_RATE)
    x = np.asarray(x48, np.float64)
    lag = metrics.estimate_delay(x, y48, SAMPLE_RATE, max_ms=max_delay_ms)
    ya = metrics.align(y48, lag, x.size)
    energy = float(np.dot(ya, ya))
    gain = float(np.dot(x, ya) / energy) if energy > 0 else 1.0
    if not np.isfinite(gain) or gain <= 0:
        gain = 1.0  # uncorrelated output: leave the level alone rather than invert it
    return (ya * gain).astype(np.float32), int(lag), gain


def known_systems() -> list[str]:
    """Names :func:`resolve_system` accepts without an external directory."""
    from mediacore.bench.peers import PEERS

    names = ["noisy", "dsp"]
    for n in (*_backend_names(), *PEERS):
        if n not in names:
            names.append(n)
    return names


def resolve_system(name: str, *, overrides: Mapping[str, Any] | None = None,
                   externals: Mapping[str, str | Path] | None = None,
                   max_delay_ms: float = 1000.0) -> System:
    """Build the :class:`System` called ``name`` (see the module docstring for the order).

    ``overrides`` are keyword arguments for ``default_chain`` (``dsp``) or
    ``Denoise`` (backends); ``externals`` maps names to directories.
    """
    import mediacore
    from mediacore.bench.peers import PEERS

    overrides = scoped_overrides(name, overrides or {})
    externals = dict(externals or {})
    base = {"mediacore": mediacore.__version__}
    if name in externals:
        d = Path(externals[name]).resolve()
        if not d.is_dir():
            raise MediaError(f"external system {name!r}: directory not found: {d}")
        return System(name, "external", f"files in {d}, aligned per clip (delay, gain)",
                      {**base, "dir": str(d), "max_delay_ms": float(max_delay_ms)},
                      external_dir=d, max_delay_ms=float(max_delay_ms))
    if name == "noisy":
        return System(name, "reference", "the input unchanged", base, _factory=_Identity)
    if name == "dsp":
        from mediacore.chain import default_chain

        def chain() -> Any:
            return default_chain(sample_rate=SAMPLE_RATE, num_channels=1, denoise="dsp", agc=False, **overrides)

        try:
            desc = repr(chain())
        except TypeError as exc:
            raise ParameterError(f"system 'dsp': bad option: {exc}") from None
        return System(name, "chain", 'default_chain(denoise="dsp", agc=False)',
                      {**base, "repr": desc, "overrides": _jsonable(overrides)}, _factory=chain)
    # a variant of a backend under a name of its own: --set cand.backend=neural --set cand.model_path=M.onnx
    backend = str(overrides.pop("backend", name))
    if backend != name and name in known_systems():
        raise ParameterError(f"system {name!r}: expected a new name for a backend variant, got the name of a "
                             f"known system (set {name}.backend only on a name of your own)")
    if backend in _backend_names():
        from mediacore.stages.denoise import Denoise

        options = {**_baseline_options(backend), **overrides}

        def stage() -> Any:
            return Denoise(sample_rate=SAMPLE_RATE, backend=backend, num_channels=1, **options)

        probe = stage()  # raises ParameterError / MissingDependencyError early
        opts = "".join(f", {k}={v!r}" for k, v in options.items())
        params = {**base, "repr": repr(probe), "overrides": _jsonable(options)}
        model = getattr(probe.backend_impl, "model_sha256", None)
        if model:  # a retrained model changes the results: part of the cache key and of the report
            params["model_sha256"] = model
        return System(name, "backend", f'Denoise(backend="{backend}"{opts})', params, _factory=stage)
    if name in PEERS:
        pkg = _PEER_PACKAGES.get(name)
        params = {**base, "peer": name}
        if pkg:
            params[pkg] = _version(pkg)
        return System(name, "peer", f"bench.peers.{name} (whole clip)", params, _whole=PEERS[name])
    raise ParameterError(f"unknown system {name!r}; known: {', '.join(known_systems())}, "
                         "or NAME=DIR given with --external")


def _baseline_options(name: str) -> dict[str, Any]:
    """The peer backend options of baseline.md (``denoise_peers.BASELINE_OPTIONS``), {} if none."""
    _load_peer_backends()
    try:
        mod = importlib.import_module("mediacore.stages.denoise_peers")
    except ImportError:
        return {}
    return dict(getattr(mod, "BASELINE_OPTIONS", {}).get(name, {}))


def scoped_overrides(name: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The overrides for system ``name``: unscoped keys, then ``name.key`` ones (which win)."""
    out = {k: v for k, v in overrides.items() if "." not in k}
    prefix = name + "."
    out.update({k[len(prefix):]: v for k, v in overrides.items() if k.startswith(prefix)})
    return out


def _jsonable(d: Mapping[str, Any]) -> dict:
    return {str(k): (v if isinstance(v, (int, float, str, bool, type(None))) else repr(v)) for k, v in d.items()}


def parse_externals(items: list[str]) -> dict[str, Path]:
    """``["zoom=rec/zoom", ...]`` -> ``{"zoom": Path("rec/zoom")}``."""
    out: dict[str, Path] = {}
    for item in items:
        name, sep, d = item.partition("=")
        name = name.strip()
        if not sep or not name or not d.strip():
            raise ParameterError(f"--external expects NAME=DIR, got {item!r}")
        if "," in name:
            raise FormatError(f"--external name {name!r} must not contain a comma")
        out[name] = Path(d.strip())
    return out


def _parse_value(text: str) -> Any:
    """``--set`` value: a Python literal (30, 0.5, 'x', None), true/false, else the string."""
    import ast

    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["a=1", "webrtc.level=3"]`` -> ``{"a": 1, "webrtc.level": 3}`` (the ``--set`` options).

    A ``SYSTEM.`` prefix limits a key to that system (see :func:`scoped_overrides`).
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        scope, dot, bare = key.rpartition(".")
        if not sep or not bare.isidentifier() or (dot and not scope):
            raise ParameterError(f"--set expects KEY=VALUE or SYSTEM.KEY=VALUE with a Python identifier "
                                 f"as KEY, got {item!r}")
        out[key] = _parse_value(value)
    return out
