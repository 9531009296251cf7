"""report.html in headless Chromium: every figure decodes and every <audio> player loads its file.

Needs Debian's ``chromium`` (``apt-get install -y chromium``) at /usr/bin/chromium
(or $CHROMIUM); skipped with that reason otherwise.  The page is loaded from
disk with the network off, so a report that needed a CDN would fail here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from test_bench_run import bench_corpus, bench_out  # noqa: F401  (fixtures; skips without the bench extra)

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

# Appended to a copy of the report: waits for the images and the players' metadata,
# then writes what it found into the DOM, which --dump-dom prints.
PROBE = """
<script>
window.addEventListener('load', async () => {
  // images are decoded by the load event; players may still be reading their files
  const imgs = [...document.images];
  const auds = [...document.querySelectorAll('audio')];
  await Promise.all(auds.map(a => a.readyState >= 1 ? null : new Promise(r => {
    a.addEventListener('loadedmetadata', r); a.addEventListener('error', r); setTimeout(r, 10000);
  })));
  const res = {
    images: imgs.length,
    decoded: imgs.filter(i => i.complete && i.naturalWidth > 0 && i.naturalHeight > 0).length,
    sizes: imgs.map(i => [i.naturalWidth, i.naturalHeight]),
    audio: auds.length,
    audio_loaded: auds.filter(a => a.readyState >= 1 && a.duration > 0).length,
    durations: auds.map(a => a.duration),
    errors: auds.filter(a => a.error).map(a => a.getAttribute('src')),
  };
  const pre = document.createElement('pre');
  pre.id = 'probe-result';
  pre.textContent = JSON.stringify(res);
  document.body.appendChild(pre);
});
</script>
"""


def _run_chromium(page: Path) -> str:
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--autoplay-policy=no-user-gesture-required", "--allow-file-access-from-files",
               f"--user-data-dir={profile}", "--virtual-time-budget=20000", "--dump-dom", page.as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK),
                    reason=f"headless Chromium not found at {CHROMIUM} (Debian: apt-get install -y chromium)")
def test_report_html_figures_decode_and_players_load(bench_out):
    html = (bench_out / "report.html").read_text(encoding="utf-8")
    page = bench_out / "report_probe.html"
    page.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    try:
        dom = _run_chromium(page)
    finally:
        page.unlink()
    m = re.search(r'<pre id="probe-result">(.*?)</pre>', dom, re.S)
    assert m, "the probe script did not report (page did not finish loading?)"
    res = json.loads(m.group(1).replace("&quot;", '"'))
    n_png = len(list((bench_out / "figures").glob("*.png")))
    assert res["images"] == n_png == 4
    assert res["decoded"] == res["images"], res["sizes"]
    assert all(w > 100 and h > 100 for w, h in res["sizes"])
    assert res["audio"] == 6  # 2 clips x (noisy, clean, dsp)
    assert not res["errors"]
    assert res["audio_loaded"] == res["audio"], res["durations"]
    assert all(abs(d - 3.0) < 0.01 for d in res["durations"])
