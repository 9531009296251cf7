"""`mediacore relay` inside a running Janus, a headless Chromium on each end (tests/janus_harness.py).

A page publishes the bundled noisy example into a VideoRoom (fake microphone, the browser's own
processing off); Janus rtp_forwards its Opus RTP to the relay and, for comparison, straight to a
second Streaming mountpoint; the relay sends to a first mountpoint; a second page subscribes to both
and records them in one AudioContext.  Skips only when janus or chromium is not installed.
"""

from __future__ import annotations

import pytest

from janus_harness import CHROMIUM, JANUS, janus_lib_dir, run_janus, score
from signals import example

pytestmark = pytest.mark.skipif(JANUS is None or CHROMIUM is None or janus_lib_dir() is None,
                                reason="needs janus and chromium (apt-get install janus chromium)")

RATE = 48000
PACKET = 960  # 20 ms of Opus


@pytest.fixture(scope="module")
def janus_run(tmp_path_factory):
    run = run_janus(tmp_path_factory.mktemp("janus"), example("noisy", RATE), timeout_s=45.0)
    return run, score(run, example("noisy", RATE), example("clean", RATE))


def test_janus_relay_counters_one_out_per_one_in(janus_run):
    run, s = janus_run
    st = run.relay_stats[0]
    # every packet Janus forwarded reached the relay, and one left per one in
    assert st["rtp_packets"] == s["packets_forwarded"] > 5 * RATE / PACKET
    assert abs(s["packets_relayed"] - s["packets_forwarded"]) <= 1
    assert st["malformed"] == st["wrong_payload_type"] == st["foreign_ssrc"] == 0
    # samples lost or added: within one packet
    assert abs(st["samples_out"] - st["samples_in"]) <= PACKET
    assert st["samples_in"] == PACKET * st["rtp_packets"] + st["concealed_samples"] + st["gap_fill_samples"]
    assert st["jitter"]["lost"] + st["concealed_packets"] <= 1, st


def test_janus_relay_denoises_what_the_subscriber_hears(janus_run):
    _, s = janus_run
    # speech-to-pause level over the same path without the relay, against the clean reference
    assert s["pause_gain_db"] >= 24.0, s
    # the relayed recording keeps its place against the direct one over the whole clip
    assert abs(s["drift_samples"]) <= PACKET, s


def test_janus_relay_latency(janus_run):
    _, s = janus_run
    # the relay's share: time a packet spends in it + the delay it adds to the audio (pipeline 1008 samples
    # + Opus lookahead 312, checked against ffmpeg in test_relay.py)
    relay_ms = s["relay_transit_ms_p50"] + 1000 * (1008 + 312) / RATE
    assert relay_ms < 60.0, s
    # end to end: the relayed stream behind the direct one at the subscriber (one clock; both playout
    # buffers included, so this can be less than the relay's share)
    assert 0.0 < s["end_to_end_added_ms"] < 60.0, s
