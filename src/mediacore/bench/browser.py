"""A browser as a benchmarked system: Chromium's own capture processing, captured clip by clip.

::

    python -m mediacore.bench.browser capture --corpus ../shared/corpus/dev --out runs/chromium
    mediacore bench --corpus ../shared/corpus/dev --systems noisy,rnnoise --external chromium=runs/chromium

For every clip of a corpus (``manifest.csv`` layout) headless Chromium is
started with a fake microphone that plays the clip (``--use-file-for-fake-
audio-capture=CLIP.wav%noloop``: the file is played once, then silence;
without ``%noloop`` Chromium loops it).  A page served by this module on
127.0.0.1 calls ``getUserMedia({audio: {noiseSuppression, autoGainControl:
false, echoCancellation: false}})``, sends the track through a local
``RTCPeerConnection`` pair (Opus, as a remote participant receives it) and
records, in one ``AudioContext`` at 48 kHz (one sample clock), both the
remote track and the local processed track.  The PCM is posted back here.

Lining the recording up with the clip: the fake device starts playing when
``getUserMedia`` opens it, before the peer connection is up, so the clip is
given ``lead_s`` of digital silence in front (the NS starts on silence, then
meets the clip's first noise as every other system does).  The local track
is lined up with the padded clip by cross-correlation (it is the same audio
after the browser's processing, whose own delay is not separable from the
device start and is taken as zero); the remote track is cut at the same
sample, so the written file lags the clip by exactly what the peer
connection adds (Opus encoder, packetisation, jitter buffer, decoder),
which ``mediacore bench --external`` then measures as the system's delay.

The same recipe is the template for capturing Zoom, Teams or any other
client by hand: play each ``noisy/<id>.flac`` into the client's microphone
(a virtual audio cable), record what a second participant receives, save it
as ``<id>.wav`` in one folder, and pass ``--external NAME=FOLDER`` (the bench
finds each file's delay within +-1 s and matches its level).
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import shutil
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mediacore.errors import MediaError

RATE = 48000

#: flags every headless Chromium here gets (root, no network, no GPU)
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--autoplay-policy=no-user-gesture-required", "--disable-features=WebRtcHideLocalIpsWithMdns",
                  "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream")


def find_chromium() -> str | None:
    """The Chromium (or Chrome) program, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


def chromium_command(url: str, *, user_data_dir: Path, fake_audio: Path | None = None,
                     program: str | None = None) -> list[str]:
    """The command line of a headless Chromium opening ``url`` with a fake microphone playing ``fake_audio`` once."""
    prog = program or find_chromium()
    if prog is None:
        raise MediaError("browser: no chromium program found (apt-get install chromium)")
    cmd = [prog, *CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}"]
    if fake_audio is not None:
        cmd.append(f"--use-file-for-fake-audio-capture={fake_audio}%noloop")
    return [*cmd, url]


# --------------------------------------------------------------------------------------------- page
RECORDER_WORKLET = r"""
class Rec extends AudioWorkletProcessor {
  constructor() { super(); this.on = true; this.port.onmessage = (e) => { this.on = false; }; }
  process(inputs) {
    const inp = inputs[0];
    if (this.on && inp.length) {
      const chans = inp.map((c) => c.slice(0));
      this.port.postMessage(chans, chans.map((c) => c.buffer));
    }
    return this.on;
  }
}
registerProcessor('rec', Rec);
"""

# Shared by the capture page and the Janus pages: record MediaStreams (one channel each) in one clock.
RECORDER_JS = r"""
async function recordStreams(streams, seconds, stopPath) {
  // record ``seconds`` (or until a GET of ``stopPath`` answers 200, when given)
  // keep remote streams flowing: Chromium renders a remote WebRTC track to WebAudio only while a media
  // element plays it
  for (const s of streams) { const el = new Audio(); el.srcObject = s; el.muted = true; el.play().catch(() => {}); }
  const ctx = new AudioContext({sampleRate: 48000});
  await ctx.audioWorklet.addModule('/worklet.js');
  const n = streams.length;
  const merger = new ChannelMergerNode(ctx, {numberOfInputs: n});
  streams.forEach((s, i) => ctx.createMediaStreamSource(s).connect(merger, 0, i));
  const node = new AudioWorkletNode(ctx, 'rec', {numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1],
                                                 channelCount: n, channelCountMode: 'explicit'});
  const chunks = []; let total = 0; let want = Math.round(seconds * 48000);
  const done = new Promise((resolve) => {
    node.port.onmessage = (e) => {
      if (total < want) { chunks.push(e.data); total += e.data[0].length; }
      if (total >= want) { node.port.postMessage('stop'); resolve(); }
    };
  });
  if (stopPath) (async () => { await pollJson(stopPath); want = total; })();
  merger.connect(node);
  const sink = new GainNode(ctx, {gain: 0}); node.connect(sink); sink.connect(ctx.destination);
  await ctx.resume();
  await done;
  const out = new Float32Array(n * total);  // planar: channel 0, then channel 1, ...
  let off = 0;
  for (const ch of chunks) { for (let c = 0; c < n; c++) out.set(ch[c] || new Float32Array(ch[0].length), c * total + off); off += ch[0].length; }
  await ctx.close();
  return {pcm: out, channels: n, samples: total};
}
async function postPcm(path, rec, info) {
  const q = new URLSearchParams({channels: rec.channels, samples: rec.samples, info: JSON.stringify(info || {})});
  await fetch(path + '?' + q, {method: 'POST', body: rec.pcm.buffer});
}
async function postText(path, text) { await fetch('/text/' + path, {method: 'POST', body: text}); }
async function pollJson(path) {
  for (;;) { const r = await fetch(path); if (r.ok) return await r.json(); await new Promise((ok) => setTimeout(ok, 50)); }
}
function gathered(pc) {
  return new Promise((ok) => { if (pc.iceGatheringState === 'complete') ok();
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && ok()); });
}
async function postError(e) {
  await fetch('/error', {method: 'POST', body: String(e && e.stack || e)});
}
"""

CAPTURE_PAGE = r"""<!doctype html><meta charset="utf-8"><title>capture</title><script src="/recorder.js"></script>
<script>
(async () => {
  try {
    const p = new URLSearchParams(location.search);
    const ns = p.get('ns') === '1', seconds = parseFloat(p.get('seconds'));
    const local = await navigator.mediaDevices.getUserMedia({audio: {noiseSuppression: ns, autoGainControl: false,
                                                                      echoCancellation: false}});
    const track = local.getAudioTracks()[0];
    const pc1 = new RTCPeerConnection(), pc2 = new RTCPeerConnection();
    pc1.onicecandidate = (e) => e.candidate && pc2.addIceCandidate(e.candidate);
    pc2.onicecandidate = (e) => e.candidate && pc1.addIceCandidate(e.candidate);
    const jb = parseFloat(p.get('jb') || '0');
    const remote = new Promise((r) => { pc2.ontrack = (e) => {
      // a playout buffer target above the default keeps NetEq from stretching the audio when this
      // (shared, loaded) machine is late to render it
      if (jb > 0 && 'jitterBufferTarget' in e.receiver) e.receiver.jitterBufferTarget = jb;
      r(new MediaStream([e.track])); }; });
    pc1.addTrack(track, local);
    await pc1.setLocalDescription(await pc1.createOffer());
    await pc2.setRemoteDescription(pc1.localDescription);
    await pc2.setLocalDescription(await pc2.createAnswer());
    await pc1.setRemoteDescription(pc2.localDescription);
    const rs = await remote;
    const rec = await recordStreams([rs, local], seconds);
    await postPcm('/pcm', rec, {settings: track.getSettings(), userAgent: navigator.userAgent});
  } catch (e) { await postError(e); }
})();
</script>"""


class PageServer:
    """A tiny HTTP server on 127.0.0.1: serves pages (path -> text) and collects posted PCM and errors.

    ``wait(path)`` blocks until a POST to ``path`` arrived and returns ``(pcm (channels, samples), info)``.
    """

    def __init__(self, pages: dict[str, tuple[str, str]] | None = None) -> None:
        self.pages = {"/recorder.js": ("text/javascript", RECORDER_JS),
                      "/worklet.js": ("text/javascript", RECORDER_WORKLET), **(pages or {})}
        self.posts: dict[str, tuple[np.ndarray, dict]] = {}
        self.errors: list[str] = []
        self.texts: dict[str, str] = {}
        self._cond = threading.Condition()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path not in owner.pages:
                    self.send_error(404)
                    return
                ctype, text = owner.pages[path]
                body = text.encode()
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                from urllib.parse import parse_qs, urlsplit

                u = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(204)
                self.end_headers()
                with owner._cond:
                    if u.path == "/error":
                        owner.errors.append(body.decode(errors="replace"))
                    elif u.path.startswith("/text/"):  # signalling and small notes from a page
                        owner.texts[u.path] = body.decode()
                    else:
                        q = parse_qs(u.query)
                        ch, n = int(q["channels"][0]), int(q["samples"][0])
                        pcm = np.frombuffer(body, np.float32).reshape(ch, n).copy()
                        owner.posts[u.path] = (pcm, json.loads(q.get("info", ["{}"])[0]))
                    owner._cond.notify_all()

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait(self, path: str, timeout_s: float, procs: list[subprocess.Popen] = ()) -> tuple[np.ndarray, dict]:
        end = time.monotonic() + timeout_s
        with self._cond:
            while path not in self.posts:
                if self.errors:
                    raise MediaError(f"browser page failed: {self.errors[0]}")
                for p in procs:
                    if p.poll() is not None:
                        raise MediaError(f"browser: chromium exited with {p.returncode} before {path} arrived")
                left = end - time.monotonic()
                if left <= 0:
                    raise MediaError(f"browser: no {path} from the page within {timeout_s:.0f} s")
                self._cond.wait(min(left, 0.5))
            return self.posts.pop(path)

    def wait_text(self, path: str, timeout_s: float, procs: list[subprocess.Popen] = ()) -> str:
        """Block until a page POSTs text to ``/text/...`` ``path``; return it."""
        end = time.monotonic() + timeout_s
        with self._cond:
            while path not in self.texts:
                if self.errors:
                    raise MediaError(f"browser page failed: {self.errors[0]}")
                for p in procs:
                    if p.poll() is not None:
                        raise MediaError(f"browser: chromium exited with {p.returncode} before {path} arrived")
                left = end - time.monotonic()
                if left <= 0:
                    raise MediaError(f"browser: no {path} from the page within {timeout_s:.0f} s")
                self._cond.wait(min(left, 0.5))
            return self.texts.pop(path)

    def publish(self, path: str, text: str, ctype: str = "application/json") -> None:
        """Serve ``text`` at ``path`` from now on (a page polls it)."""
        self.pages[path] = (ctype, text)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def stop(proc: subprocess.Popen) -> None:
    """End a Chromium we started (its whole process group)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, 15)
        except ProcessLookupError:
            pass
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(5)


def launch(url: str, workdir: Path, *, fake_audio: Path | None = None, nice: int = 0,
           strict_nice: bool = False) -> subprocess.Popen:
    """Start headless Chromium on ``url`` (own process group, fresh profile under ``workdir``).

    ``nice``: start it at that niceness.  Chromium then raises the priority of its renderer and real-time
    audio threads where it may (as root it may); ``strict_nice`` takes that right away (no CAP_SYS_NICE),
    which on a machine whose cores are busy starves its audio: the capture stalls.
    """
    profile = Path(tempfile.mkdtemp(prefix="chromium-", dir=workdir))
    cmd = chromium_command(url, user_data_dir=profile, fake_audio=fake_audio)
    if nice:
        # Chromium raises its renderer and audio threads' priority (as root it can); without CAP_SYS_NICE
        # the whole browser stays at the niceness asked for
        drop = ["setpriv", "--bounding-set", "-sys_nice", "--inh-caps", "-sys_nice"] if shutil.which("setpriv") \
            and os.geteuid() == 0 and strict_nice else []
        cmd = ["nice", "-n", str(nice), *drop, *cmd]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def write_fake_capture(path: Path, x: np.ndarray, rate: int, lead_s: float) -> None:
    """``x`` (mono float) at 48 kHz 16-bit PCM with ``lead_s`` of silence in front: what the fake device plays."""
    import soundfile as sf

    from mediacore.bench import metrics

    y = metrics.resample(np.asarray(x, np.float64), rate, RATE) if rate != RATE else np.asarray(x, np.float64)
    y = np.concatenate([np.zeros(int(round(lead_s * RATE))), y])
    sf.write(str(path), np.clip(y, -1.0, 32767 / 32768), RATE, subtype="PCM_16")


def lag_in(haystack: np.ndarray, needle: np.ndarray) -> int:
    """Where ``needle`` starts in ``haystack`` (FFT cross-correlation over the whole length)."""
    n = len(haystack) + len(needle)
    nfft = 1 << (n - 1).bit_length()
    c = np.fft.irfft(np.fft.rfft(haystack, nfft) * np.conj(np.fft.rfft(needle, nfft)), nfft)
    c = c[: len(haystack)]  # non-negative lags only
    return int(np.argmax(c))


@dataclass
class Capture:
    remote: np.ndarray     # what the remote participant hears, cut at the clip's first sample
    local: np.ndarray      # the browser's processed track, cut the same way
    transport_lag: int     # samples the peer connection adds (remote behind local)
    drift: int             # largest change of that lag over the clip (NetEq stretching), samples
    info: dict


def window_lags(ref: np.ndarray, y: np.ndarray, around: int, *, window_s: float = 1.0, search_ms: float = 60.0,
                min_rms: float = 1e-3) -> list[int]:
    """Lag of ``y`` behind ``ref`` per window (only windows where ``ref`` is not silent), near ``around``."""
    w, out = int(window_s * RATE), []
    m = int(search_ms * RATE / 1000)
    for s in range(0, len(ref) - w, w):
        seg = ref[s: s + w]
        if np.sqrt(np.mean(seg ** 2)) < min_rms or s + around - m < 0:
            continue
        part = y[s + around - m: s + around + w + m]
        from mediacore.bench import metrics

        out.append(around - m + metrics.estimate_delay(np.concatenate([np.zeros(m), seg]), part, RATE,
                                                       max_ms=2 * search_ms) - m)
    return out


def capture_clip(server: PageServer, x: np.ndarray, rate: int, workdir: Path, *, noise_suppression: bool = True,
                 lead_s: float = 1.5, tail_s: float = 1.0, timeout_s: float = 60.0, nice: int = 0,
                 jitter_target_ms: float = 0.0) -> Capture:
    """Play one clip into Chromium's microphone, record the remote and the local track; see the module docstring."""
    wav = workdir / "fake-capture.wav"
    write_fake_capture(wav, x, rate, lead_s)
    dur = len(x) / rate
    seconds = dur + lead_s + tail_s
    url = server.url(f"/capture.html?ns={int(noise_suppression)}&seconds={seconds:.3f}&jb={jitter_target_ms:g}")
    proc = launch(url, workdir, fake_audio=wav, nice=nice)
    try:
        pcm, info = server.wait("/pcm", timeout_s + seconds, [proc])
    finally:
        stop(proc)
        shutil.rmtree(next(workdir.glob("chromium-*"), workdir / "none"), ignore_errors=True)
    remote, local = pcm[0].astype(np.float64), pcm[1].astype(np.float64)
    from mediacore.bench import metrics

    x48 = metrics.resample(np.asarray(x, np.float64), rate, RATE) if rate != RATE else np.asarray(x, np.float64)
    start = lag_in(local, x48)  # the clip's first sample in the recording's clock (processing delay taken as 0)
    transport = metrics.estimate_delay(local, remote, RATE, max_ms=500.0)
    if start + len(x48) > len(local) + RATE // 10:
        raise MediaError(f"browser: the recording holds only {len(local) / RATE:.2f} s; the clip starts at "
                         f"{start / RATE:.2f} s and lasts {dur:.2f} s (page too slow to start; raise lead_s)")
    n = len(x48)
    lags = window_lags(local[start: start + n], remote[start:], transport)
    drift = int(max(lags) - min(lags)) if lags else 0
    cut = lambda y: np.concatenate([y[start: start + n], np.zeros(max(0, start + n - len(y)))])  # noqa: E731
    return Capture(remote=cut(remote).astype(np.float32), local=cut(local).astype(np.float32),
                   transport_lag=int(transport), drift=drift, info=info)


def capture_corpus(corpus: Path, out: Path, *, noise_suppression: bool = True, ids: list[str] | None = None,
                   limit: int | None = None, lead_s: float = 1.5, nice: int = 0, jitter_target_ms: float = 0.0,
                   max_drift: int = 960, retries: int = 2, log=print) -> dict[str, Any]:
    """Capture every clip of ``corpus`` into ``out/<id>.wav``; return a summary (also written to out/capture.json)."""
    import soundfile as sf

    from mediacore.bench.corpus import load_corpus

    clips = load_corpus(corpus)
    clips = [c for c in clips if ids is None or c.id in ids][: limit]
    (out / "local").mkdir(parents=True, exist_ok=True)
    server = PageServer({"/capture.html": ("text/html", CAPTURE_PAGE)})
    summary: dict[str, Any] = {"noise_suppression": noise_suppression, "lead_s": lead_s,
                               "jitter_target_ms": jitter_target_ms, "clips": {}}
    try:
        with tempfile.TemporaryDirectory(prefix="mediacore-browser-") as tmp:
            for i, clip in enumerate(clips):
                x, sr = sf.read(str(clip.noisy_path), dtype="float64", always_2d=True)
                t0 = time.monotonic()
                for attempt in range(1, retries + 2):
                    cap = capture_clip(server, x[:, 0], sr, Path(tmp), noise_suppression=noise_suppression,
                                       lead_s=lead_s, nice=nice, jitter_target_ms=jitter_target_ms)
                    if cap.drift <= max_drift:
                        break
                    log(f"{clip.id}: the remote track drifted {cap.drift} samples against the local one "
                        f"(playout stretched); attempt {attempt}")
                sf.write(str(out / f"{clip.id}.wav"), cap.remote, RATE, subtype="FLOAT")
                sf.write(str(out / "local" / f"{clip.id}.wav"), cap.local, RATE, subtype="FLOAT")
                summary["clips"][clip.id] = {"transport_ms": 1000 * cap.transport_lag / RATE,
                                             "drift_samples": cap.drift, "attempts": attempt,
                                             "settings": cap.info.get("settings")}
                summary["user_agent"] = cap.info.get("userAgent")
                log(f"[{i + 1}/{len(clips)}] {clip.id}: peer connection {1000 * cap.transport_lag / RATE:.1f} ms, "
                    f"drift {cap.drift} samples, {time.monotonic() - t0:.1f} s")
    finally:
        server.close()
    lags = [c["transport_ms"] for c in summary["clips"].values()]
    summary["transport_ms_median"] = float(np.median(lags)) if lags else None
    summary["drift_samples_max"] = max((c["drift_samples"] for c in summary["clips"].values()), default=None)
    (out / "capture.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mediacore.bench.browser",
                                 description="Capture a corpus through Chromium's getUserMedia processing and a "
                                             "local peer connection, for mediacore bench --external.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("capture", help="one WAV per clip into --out")
    c.add_argument("--corpus", required=True, type=Path, help="corpus folder (manifest.csv)")
    c.add_argument("--out", required=True, type=Path)
    c.add_argument("--noise-suppression", choices=("on", "off"), default="on",
                   help="getUserMedia noiseSuppression (autoGainControl and echoCancellation are off)")
    c.add_argument("--ids", help="comma-separated clip ids (default: all)")
    c.add_argument("--limit", type=int, help="only the first N clips")
    c.add_argument("--lead-s", type=float, default=1.5, help="silence before the clip (default: %(default)s)")
    c.add_argument("--jitter-target-ms", type=float, default=0.0,
                   help="RTCRtpReceiver.jitterBufferTarget of the receiving side (default: the browser's own)")
    c.add_argument("--retries", type=int, default=2,
                   help="captures again a clip whose playout was stretched by more than one packet (default: 2)")
    c.add_argument("--nice", type=int, default=0, help="run Chromium at this niceness (kept for its threads too)")
    a = ap.parse_args(argv)
    if find_chromium() is None:
        print("browser: no chromium program found (apt-get install chromium)", file=sys.stderr)
        return 1
    s = capture_corpus(a.corpus, a.out, noise_suppression=a.noise_suppression == "on",
                       ids=a.ids.split(",") if a.ids else None, limit=a.limit, lead_s=a.lead_s, nice=a.nice,
                       jitter_target_ms=a.jitter_target_ms, retries=a.retries,
                       log=lambda m: print(m, file=sys.stderr, flush=True))
    print(json.dumps({k: v for k, v in s.items() if k != "clips"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
