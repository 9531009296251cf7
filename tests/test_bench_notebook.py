"""notebooks/bench.ipynb runs from top to bottom (nbclient + ipykernel) and shows its figures.

Needs ``nbclient``, ``nbformat`` and ``ipykernel`` (and the bench extra); skipped without them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "bench.ipynb"


def test_bench_notebook_executes(tmp_path, monkeypatch):
    for mod in ("nbclient", "nbformat", "ipykernel", "pesq", "pystoi", "speechmos"):
        pytest.importorskip(mod)
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("BENCH_WORKDIR", str(tmp_path))
    monkeypatch.delenv("BENCH_CORPUS", raising=False)
    monkeypatch.delenv("BENCH_SYSTEMS", raising=False)
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    pngs = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pngs) == 4  # per-SNR curves, quality vs cost, two spectrograms
    assert any("Cost and delay" in o.get("data", {}).get("text/markdown", "") for o in outputs)
    assert (tmp_path / "out" / "results.json").is_file()
