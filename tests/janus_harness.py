"""Janus end to end: a browser publishes, Janus forwards to `mediacore relay`, a browser subscribes.

::

    Chromium (fake mic: noisy clip, processing off) --WebRTC--> Janus VideoRoom
        rtp_forward --> mediacore relay --RTP--> Janus Streaming mountpoint "clean-K"  --WebRTC--\\
        rtp_forward -----------------------------> Janus Streaming mountpoint "direct-K" --WebRTC--> Chromium
                                                                (records every mountpoint in one AudioContext)

Janus runs on loopback from a config written into a temporary folder (HTTP API only, VideoRoom and
Streaming plugins only).  The subscriber page records the relayed and the direct stream of each
publisher in one clock, so the relay's added delay is the lag between them.

Used by tests/test_janus.py and benchmarks/janus_e2e.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mediacore.bench import browser
from integration_helpers import free_udp_port_pair
from relay_harness import ProxyLog, UdpProxy

JANUS = shutil.which("janus")
CHROMIUM = browser.find_chromium()
HOST = "127.0.0.1"
RATE = 48000


def janus_lib_dir() -> Path | None:
    """Where the packaged plugins and transports are (Debian: /usr/lib/<triplet>/janus)."""
    if JANUS is None:
        return None
    prefix = Path(JANUS).resolve().parent.parent
    for cand in [*sorted((prefix / "lib").glob("*/janus")), prefix / "lib" / "janus", prefix / "lib64" / "janus"]:
        if (cand / "plugins").is_dir() and (cand / "transports").is_dir():
            return cand
    return None


def write_janus_config(folder: Path, *, http_port: int, rtp_range: str = "40000-49999") -> Path:
    """A minimal Janus 1.x configuration: HTTP API on 127.0.0.1, VideoRoom and Streaming plugins only."""
    lib = janus_lib_dir()
    if lib is None:
        raise RuntimeError("janus: plugins/transports folder not found next to the janus program")
    folder.mkdir(parents=True, exist_ok=True)
    keep_plugins = {"libjanus_videoroom.so", "libjanus_streaming.so"}
    off_plugins = sorted(p.name for p in (lib / "plugins").glob("*.so") if p.name not in keep_plugins)
    off_transports = sorted(p.name for p in (lib / "transports").glob("*.so") if p.name != "libjanus_http.so")
    (folder / "janus.jcfg").write_text(f"""\
general: {{
    configs_folder = "{folder}"
    plugins_folder = "{lib / 'plugins'}"
    transports_folder = "{lib / 'transports'}"
    events_folder = "{lib / 'events'}"
    loggers_folder = "{lib / 'loggers'}"
    debug_level = 4
    server_name = "mediacore-test"
    session_timeout = 60
}}
media: {{
    rtp_port_range = "{rtp_range}"
}}
nat: {{
    ice_ignore_list = "vmnet"
    ignore_mdns = true
}}
plugins: {{
    disable = "{','.join(off_plugins)}"
}}
transports: {{
    disable = "{','.join(off_transports)}"
}}
events: {{
    broadcast = false
}}
""")
    (folder / "janus.transport.http.jcfg").write_text(f"""\
general: {{
    json = "compact"
    base_path = "/janus"
    http = true
    port = {http_port}
    ip = "{HOST}"
    https = false
}}
admin: {{
    admin_http = false
}}
""")
    (folder / "janus.plugin.videoroom.jcfg").write_text("general: {\n}\n")
    (folder / "janus.plugin.streaming.jcfg").write_text("general: {\n}\n")
    return folder / "janus.jcfg"


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class JanusClient:
    """The Janus HTTP API: one session, its handles, and a long-poll thread collecting events."""

    def __init__(self, port: int) -> None:
        self.base = f"http://{HOST}:{port}/janus"
        self._tx = 0
        self.events: list[dict] = []
        self._cond = threading.Condition()
        self.session = self._call(self.base, {"janus": "create"})["data"]["id"]
        self._halt = False
        self._poller = threading.Thread(target=self._poll, daemon=True)
        self._poller.start()

    def _call(self, url: str, body: dict) -> dict:
        self._tx += 1
        data = json.dumps({**body, "transaction": f"t{self._tx}"}).encode()
        req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            reply = json.loads(r.read())
        if reply.get("janus") == "error":
            raise RuntimeError(f"janus: {body} -> {reply['error']}")
        return reply

    def _poll(self) -> None:
        while not self._halt:
            try:
                with urllib.request.urlopen(f"{self.base}/{self.session}?maxev=10", timeout=35) as r:
                    evs = json.loads(r.read())
            except Exception:  # noqa: BLE001 - connection cut at shutdown, or a retry
                if self._halt:
                    return
                time.sleep(0.1)
                continue
            evs = evs if isinstance(evs, list) else [evs]
            with self._cond:
                self.events.extend(e for e in evs if e.get("janus") != "keepalive")
                self._cond.notify_all()

    def attach(self, plugin: str) -> int:
        return self._call(f"{self.base}/{self.session}", {"janus": "attach", "plugin": plugin})["data"]["id"]

    def request(self, handle: int, body: dict, jsep: dict | None = None) -> dict:
        """A plugin message: the synchronous reply's plugin data, or the ack of an asynchronous one."""
        msg = {"janus": "message", "body": body, **({"jsep": jsep} if jsep else {})}
        reply = self._call(f"{self.base}/{self.session}/{handle}", msg)
        if reply.get("janus") == "success":
            data = reply["plugindata"]["data"]
            if "error" in data:
                raise RuntimeError(f"janus: {body} -> {data['error']}")
            return data
        return reply

    def wait_event(self, handle: int, pred, timeout_s: float = 20.0) -> dict:
        end = time.monotonic() + timeout_s
        with self._cond:
            while True:
                for i, e in enumerate(self.events):
                    if e.get("sender") == handle and pred(e):
                        return self.events.pop(i)
                left = end - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"janus: no expected event for handle {handle} within {timeout_s} s; "
                                       f"seen: {[e for e in self.events if e.get('sender') == handle]}")
                self._cond.wait(min(left, 0.5))

    def close(self) -> None:
        self._halt = True
        try:
            self._call(f"{self.base}/{self.session}", {"janus": "destroy"})
        except OSError:
            pass


PUB_PAGE = r"""<!doctype html><meta charset="utf-8"><title>publish</title><script src="/recorder.js"></script>
<script>
(async () => {
  try {
    const p = new URLSearchParams(location.search);
    const names = p.get('names').split(',');
    // negotiate first, open the (fake) microphone once connected: the clip starts playing when media can flow
    window.pcs = [];
    const senders = await Promise.all(names.map(async (name) => {
      const pc = new RTCPeerConnection(); window.pcs.push(pc);
      const tr = pc.addTransceiver('audio', {direction: 'sendonly'});
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc);
      await postText('offer-' + name, JSON.stringify({type: 'offer', sdp: pc.localDescription.sdp}));
      await pc.setRemoteDescription(await pollJson('/answer-' + name));
      await new Promise((ok) => { if (pc.connectionState === 'connected') ok();
        pc.addEventListener('connectionstatechange', () => pc.connectionState === 'connected' && ok()); });
      return tr.sender;
    }));
    await pollJson('/go');
    const local = await navigator.mediaDevices.getUserMedia({audio: {noiseSuppression: false, autoGainControl: false,
                                                                      echoCancellation: false}});
    const track = local.getAudioTracks()[0];
    await Promise.all(senders.map((s, i) => s.replaceTrack(i ? track.clone() : track)));
    await postText('sending', '1');
  } catch (e) { await postError(e); }
})();
</script>"""

SUB_PAGE = r"""<!doctype html><meta charset="utf-8"><title>subscribe</title><script src="/recorder.js"></script>
<script>
(async () => {
  try {
    const p = new URLSearchParams(location.search);
    const names = p.get('names').split(','), seconds = parseFloat(p.get('seconds'));
    const pcs = [], streams = [];
    for (const name of names) {
      const offer = await pollJson('/offer-' + name);
      const pc = new RTCPeerConnection(); pcs.push(pc);
      const got = new Promise((ok) => { pc.ontrack = (e) => ok(new MediaStream([e.track])); });
      await pc.setRemoteDescription(offer);
      await pc.setLocalDescription(await pc.createAnswer());
      await gathered(pc);
      await postText('answer-' + name, JSON.stringify({type: 'answer', sdp: pc.localDescription.sdp}));
      streams.push(await got);
    }
    await Promise.all(pcs.map((pc) => new Promise((ok) => {
      if (pc.connectionState === 'connected') ok();
      pc.addEventListener('connectionstatechange', () => pc.connectionState === 'connected' && ok()); })));
    const rec = recordStreams(streams, seconds, '/stop');
    await postText('recording', '1');
    await postPcm('/pcm', await rec, {});
  } catch (e) { await postError(e); }
})();
</script>"""


@dataclass
class JanusRun:
    recordings: dict[str, np.ndarray]         # mountpoint name -> what the subscriber recorded (48 kHz)
    relay_stats: list[dict]                   # per publisher
    relay_cpu_s: float                        # all relays' thread CPU time
    proxies: dict[str, tuple[ProxyLog, ProxyLog]]  # per publisher: (Janus -> relay, relay -> Janus) packet logs
    setup_s: float
    timings: dict = field(default_factory=dict)
    janus_log: str = ""


_T0 = [0.0]


def _mark(what: str) -> None:
    if os.environ.get("JANUS_HARNESS_DEBUG"):
        print(f"[{time.monotonic() - _T0[0]:6.2f}] {what}", file=sys.stderr, flush=True)


def transit_ms(proxy_in: ProxyLog, proxy_out: ProxyLog) -> np.ndarray:
    """Per packet: the time it left the relay minus the time the packet with the same index entered it."""
    t_in = np.array([t for t, _ in proxy_in.forwarded])
    t_out = np.array([t for t, _ in proxy_out.forwarded])
    n = min(len(t_in), len(t_out))
    return 1000 * (t_out[:n] - t_in[:n])


def opus_pt(sdp: str) -> int:
    m = re.search(r"a=rtpmap:(\d+) opus/48000", sdp, re.I)
    if not m:
        raise RuntimeError("publisher offer has no opus/48000")
    return int(m.group(1))


def audio_mid(sdp: str) -> str:
    m = re.search(r"m=audio.*?a=mid:(\S+)", sdp, re.S)
    return m.group(1) if m else "0"


def _relay_sdp(port: int, pt: int) -> str:
    return (f"v=0\r\no=- 0 0 IN IP4 {HOST}\r\ns=janus rtp_forward\r\nc=IN IP4 {HOST}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP {pt}\r\na=rtpmap:{pt} opus/48000/2\r\n")


def run_janus(workdir: Path, clip: np.ndarray, *, publishers: int = 1, lead_s: float = 1.0, tail_s: float = 1.0,
              relay_mode: str = "process", relay_args: tuple[str, ...] = (), timeout_s: float = 60.0,
              nice: int = 0) -> JanusRun:
    """Publish ``clip`` (48 kHz mono) ``publishers`` times into Janus, relay each, record relayed and direct.

    ``relay_mode``: ``"process"``: one ``mediacore relay`` command per publisher; ``"shared"``: every
    stream in one Python process on one asyncio loop (benchmarks/janus_e2e.py's many-streams case).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    t_start = _T0[0] = time.monotonic()
    http_port = free_tcp_port()
    conf = write_janus_config(workdir / "janus", http_port=http_port)
    janus_log = open(workdir / "janus.log", "w")
    cmd = [JANUS, "-C", str(conf), "-F", str(conf.parent), "--log-stdout", "-o"]
    if nice:
        cmd = ["nice", "-n", str(nice), *cmd]
    jproc = subprocess.Popen(cmd, stdout=janus_log, stderr=subprocess.STDOUT, start_new_session=True)
    procs: list[subprocess.Popen] = []
    relays: list[subprocess.Popen] = []
    server = browser.PageServer({"/pub.html": ("text/html", PUB_PAGE), "/sub.html": ("text/html", SUB_PAGE)})
    names = [f"p{k}" for k in range(publishers)]
    proxies: dict[str, tuple[UdpProxy, UdpProxy]] = {}
    try:
        client = None
        for _ in range(100):
            if jproc.poll() is not None:
                raise RuntimeError(f"janus exited with {jproc.returncode}: {(workdir / 'janus.log').read_text()[-3000:]}")
            try:
                client = JanusClient(http_port)
                break
            except OSError:
                time.sleep(0.1)
        if client is None:
            raise RuntimeError("janus: HTTP API did not come up within 10 s")
        _mark("janus up")
        room_h = client.attach("janus.plugin.videoroom")
        room = 1234
        client.request(room_h, {"request": "create", "room": room, "publishers": 16, "audiocodec": "opus",
                                "description": "mediacore"})
        stream_h = client.attach("janus.plugin.streaming")
        mounts = {}  # name -> (id, port)
        mid = 1
        for name in names:
            for kind in ("clean", "direct"):
                port = free_udp_port_pair()
                mounts[f"{kind}-{name}"] = (mid, port)
                client.request(stream_h, {"request": "create", "type": "rtp", "id": mid, "name": f"{kind}-{name}",
                                          "media": [{"type": "audio", "mid": "a", "port": port, "pt": 111,
                                                     "codec": "opus"}]})
                mid += 1
        # subscriber first: it records from before the publishers start
        seconds = timeout_s + len(clip) / RATE  # an upper bound: the page records until /stop
        sub_names = [f"{kind}-{n}" for n in names for kind in ("clean", "direct")]
        procs.append(browser.launch(server.url(f"/sub.html?names={','.join(sub_names)}&seconds={seconds:.3f}"),
                                    workdir, nice=nice))
        sub_handles = {}
        for name in sub_names:
            h = client.attach("janus.plugin.streaming")
            sub_handles[name] = h
            client.request(h, {"request": "watch", "id": mounts[name][0]})
            ev = client.wait_event(h, lambda e: "jsep" in e)
            server.publish(f"/offer-{name}", json.dumps(ev["jsep"]))
            ans = json.loads(server.wait_text(f"/text/answer-{name}", 30, procs))
            client.request(h, {"request": "start"}, jsep=ans)
        _mark("subscribers answered")
        server.wait_text("/text/recording", 30, procs)
        # relays, listening before anything is forwarded
        _mark("recording")
        relay_ports = {n: free_udp_port_pair() for n in names}
        # timing proxies on both sides of each relay: Janus -> proxy_in -> relay -> proxy_out -> Janus
        fwd_ports = {n: free_udp_port_pair() for n in names}
        out_ports = {n: free_udp_port_pair() for n in names}
        for n in names:
            proxies[n] = (UdpProxy(fwd_ports[n], [relay_ports[n]]), UdpProxy(out_ports[n], [mounts[f"clean-{n}"][1]]))
            for px in proxies[n]:
                px.start()
        # publishers
        wav = workdir / "publish.wav"
        browser.write_fake_capture(wav, clip, RATE, lead_s)
        procs.append(browser.launch(server.url(f"/pub.html?names={','.join(names)}"), workdir, fake_audio=wav,
                                    nice=nice))
        _mark("publisher launched")
        t_pub = time.monotonic()
        pub_h = {}
        for name in names:
            offer = json.loads(server.wait_text(f"/text/offer-{name}", 30, procs))
            if not relays and relay_mode != "none":
                pt = opus_pt(offer["sdp"])
                relays = _start_relays(workdir, names, relay_ports, out_ports, pt, relay_mode, relay_args, nice)
            _mark("offer in")
            h = client.attach("janus.plugin.videoroom")
            pub_h[name] = h
            client.request(h, {"request": "joinandconfigure", "room": room, "ptype": "publisher", "display": name,
                                "audio": True, "video": False}, jsep={**offer, "trickle": False})
            ev = client.wait_event(h, lambda e: "jsep" in e)
            _mark("answer out")
            pid = ev["plugindata"]["data"]["id"]
            server.publish(f"/answer-{name}", json.dumps(ev["jsep"]))
            a_mid = audio_mid(offer["sdp"])
            for kind, port in (("clean", fwd_ports[name]), ("direct", mounts[f"direct-{name}"][1])):
                client.request(room_h, {"request": "rtp_forward", "room": room, "publisher_id": pid, "host": HOST,
                                        "streams": [{"mid": a_mid, "port": port}]})
        _mark("forwarding")
        setup_s = time.monotonic() - t_pub
        server.publish("/go", "1")
        server.wait_text("/text/sending", 30, procs)
        _mark("sending")
        time.sleep(lead_s + len(clip) / RATE + tail_s)
        server.publish("/stop", "1")
        pcm, _ = server.wait("/pcm", 30, procs)
        _mark("pcm in")
        rec = {name: pcm[i].astype(np.float32) for i, name in enumerate(sub_names)}
        for p in procs:
            browser.stop(p)
        stats, cpu = _stop_relays(relays, relay_mode, timeout_s)
        for pair in proxies.values():
            for px in pair:
                px.stop()
        return JanusRun(recordings=rec, relay_stats=stats, relay_cpu_s=cpu, setup_s=setup_s,
                        proxies={n: (a.log, b.log) for n, (a, b) in proxies.items()},
                        timings={"total_s": time.monotonic() - t_start})
    finally:
        for p in procs:
            browser.stop(p)
        for r in relays:
            if r.poll() is None:
                r.kill()
                r.wait(5)
        server.close()
        for pair in proxies.values():
            for px in pair:
                if px.is_alive():
                    px.stop()
        if jproc.poll() is None:
            os.killpg(jproc.pid, signal.SIGTERM)
            try:
                jproc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(jproc.pid, signal.SIGKILL)
                jproc.wait(5)
        janus_log.close()
        for d in workdir.glob("chromium-*"):
            shutil.rmtree(d, ignore_errors=True)


SHARED_RELAY = r"""
import asyncio, json, signal, sys
from mediacore.integrations.rtp.relay import Relay, RelayConfig
from mediacore.integrations.rtp.sdp import parse_sdp
jobs = json.loads(sys.argv[1])
async def main():
    relays = [Relay(RelayConfig(input=parse_sdp(open(j["sdp"]).read())), send_to=("127.0.0.1", j["send"]))
              for j in jobs]
    for r in relays:
        await r.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("relay: ready", file=sys.stderr, flush=True)
    await stop.wait()
    for r in relays:
        r.close()
    print(json.dumps([r.stats for r in relays]))
asyncio.run(main())
"""


def _start_relays(workdir, names, relay_ports, send_ports, pt, mode, extra, nice) -> list[subprocess.Popen]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    pre = ["nice", "-n", str(nice)] if nice else []
    jobs = []
    for name in names:
        sdp = workdir / f"relay-{name}.sdp"
        sdp.write_text(_relay_sdp(relay_ports[name], pt))
        jobs.append({"sdp": str(sdp), "send": send_ports[name], "name": name})
    if mode == "shared":
        cmds = [[*pre, sys.executable, "-c", SHARED_RELAY, json.dumps(jobs)]]
    else:
        cmds = [[*pre, sys.executable, "-m", "mediacore", "relay", "--sdp", j["sdp"], "--send",
                 f"{HOST}:{j['send']}", "--stats", str(workdir / f"relay-{j['name']}.json"), *extra] for j in jobs]
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for c in cmds]
    for p in procs:
        line = p.stderr.readline()
        if not line.startswith("relay:"):
            p.kill()
            raise RuntimeError(f"relay did not start: {line}{p.stderr.read()}")
    return procs


def _stop_relays(relays, mode, timeout_s) -> tuple[list[dict], float]:
    stats = []
    for r in relays:
        r.send_signal(signal.SIGTERM)
        out, err = r.communicate(timeout=timeout_s)
        if r.returncode != 0:
            raise RuntimeError(f"relay exited with {r.returncode}: {err}")
        got = json.loads(out)
        stats.extend(got if isinstance(got, list) else [got])
    return stats, float(sum(s["cpu_s"] for s in stats))


def score(run: JanusRun, noisy: np.ndarray, clean: np.ndarray, name: str = "p0") -> dict:
    """Line the recordings of publisher ``name`` up with the clip and measure what the relay did.

    ``direct`` (the same path without the relay) is found in the recording by cross-correlation with
    the noisy clip; ``relayed`` by its lag behind ``direct`` (one clock: everything the relay adds,
    playout buffers included).  Gains are over ``direct``, against the clean reference.
    """
    from integration_helpers import mag_snr_db, si_sdr_db, speech_to_pause_db
    from mediacore.bench import metrics

    direct = run.recordings[f"direct-{name}"].astype(np.float64)
    relayed = run.recordings[f"clean-{name}"].astype(np.float64)
    n = len(noisy)
    d0 = browser.lag_in(direct, np.asarray(noisy, np.float64))
    lag = metrics.estimate_delay(direct, relayed, RATE, max_ms=500.0)
    if d0 + lag + n > len(relayed):
        raise AssertionError(f"recording too short: clip at {d0 / RATE:.2f} s + {n / RATE:.2f} s, "
                             f"recorded {len(relayed) / RATE:.2f} s")
    x, y = direct[d0: d0 + n], relayed[d0 + lag: d0 + lag + n]

    def lag_at(a, b, s):  # lag of b behind a over 1.5 s from sample s
        w = int(1.5 * RATE)
        return metrics.estimate_delay(a[s: s + w], b[s: s + w + 4800], RATE, max_ms=100.0)

    skip = RATE // 2
    c = np.asarray(clean, np.float64)
    proxy_in, proxy_out = run.proxies[name]
    tr = transit_ms(proxy_in, proxy_out)
    return {
        "clip_start_s": d0 / RATE,
        "end_to_end_added_ms": 1000 * lag / RATE,
        "drift_samples": lag_at(x, y, n - int(2 * RATE)) - lag_at(x, y, skip),
        "pause_gain_db": speech_to_pause_db(c[skip:], y[skip:], RATE) - speech_to_pause_db(c[skip:], x[skip:], RATE),
        "si_sdr_gain_db": si_sdr_db(c[skip:], y[skip:]) - si_sdr_db(c[skip:], x[skip:]),
        "mag_snr_gain_db": mag_snr_db(c[skip:], y[skip:], RATE) - mag_snr_db(c[skip:], x[skip:], RATE),
        "relay_transit_ms_p50": float(np.median(tr)) if len(tr) else None,
        "relay_transit_ms_p95": float(np.percentile(tr, 95)) if len(tr) else None,
        "packets_forwarded": len(proxy_in.forwarded),
        "packets_relayed": len(proxy_out.forwarded),
    }
