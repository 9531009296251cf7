"""The machine and package versions a benchmark ran with, for its header and its JSON.

One implementation for every script in ``benchmarks/``::

    env = environment(("numpy", "numba", "scipy"))
    env["threads"]["numba"] = numba.get_num_threads()   # optional extras
    print(format_environment(env))

prints::

    CPU: <model>  (<platform>); os_cpu_count=<n>
    versions: python <x.y.z>, numpy <v>, numba <v>, scipy <v>
    threads: NUMBA_NUM_THREADS=1, OMP_NUM_THREADS=1, numba=1

Only the standard library is imported here (no numba, scipy or numpy), so a
script may set its thread variables and then import this module; the extras
that need numba are added by the script that has imported it.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterable, Mapping
from importlib import metadata
from typing import Any

#: Packages reported when a script names none.
DEFAULT_PACKAGES: tuple[str, ...] = (
    "mediacore", "numpy", "numba", "llvmlite", "scipy", "rocket-fft", "soundfile", "av", "soxr",
    "pywebrtc-audio", "webrtcvad-wheels", "pyrnnoise",
)

#: Environment variables that set the numeric libraries' thread counts.
THREAD_VARS: tuple[str, ...] = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS")

NOT_INSTALLED = "not installed"


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo``, else ``platform.processor()``, else "unknown"."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def package_versions(names: Iterable[str]) -> dict[str, str]:
    """``{distribution name: version}``, "not installed" for a missing one.

    ``mediacore`` run from a source tree without being installed is reported
    as ``"<__version__> (src)"``.
    """
    out: dict[str, str] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = NOT_INSTALLED
            if name == "mediacore":
                from mediacore import __version__

                out[name] = f"{__version__} (src)"
    return out


def environment(names: Iterable[str] = DEFAULT_PACKAGES, *,
                environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Python, platform, CPU model and count, thread variables and package versions.

    ``environ`` is where the thread variables are read (default ``os.environ``;
    a script that sets them for child processes passes the children's).
    ``threads`` maps each of :data:`THREAD_VARS` to its value, None when unset;
    a script may add entries to it before :func:`format_environment`.
    """
    env = os.environ if environ is None else environ
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": {v: env.get(v) for v in THREAD_VARS},
        "versions": package_versions(names),
    }


def format_environment(env: Mapping[str, Any]) -> str:
    """The header lines (CPU, versions, threads) for an :func:`environment` dict, without a final newline."""
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items())
    threads = ", ".join(f"{k}={'unset' if v is None else v}" for k, v in env["threads"].items())
    return "\n".join([
        f"CPU: {env['cpu']}  ({env['platform']}); os_cpu_count={env['cpu_count']}",
        f"versions: python {env['python']}" + (f", {versions}" if versions else ""),
        f"threads: {threads}",
    ])
