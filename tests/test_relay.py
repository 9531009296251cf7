"""`mediacore relay` end to end against ffmpeg (sender and recorder), clean and with 5 % loss + reordering."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from relay_harness import FFMPEG, Impairment, run_relay, transit_ms
from integration_helpers import denoise_gains, speech_to_pause_db
from signals import example, lag_of

pytestmark = pytest.mark.skipif(FFMPEG is None, reason="needs the ffmpeg program (apt-get install ffmpeg)")

RATE = 48000
PACKET = 960


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Both runs at once (each takes the clip's 6 s in real time)."""
    clip = example("noisy", RATE)
    results = {}

    def go(name, imp):
        try:
            results[name] = run_relay(tmp_path_factory.mktemp(name), clip, impairment=imp,
                                      sender_fec_percent=10 if imp else 0)
        except Exception as exc:  # reported by the test that needs it
            results[name] = exc

    threads = [threading.Thread(target=go, args=("clean", None)),
               threading.Thread(target=go, args=("impaired", Impairment(loss=0.05, reorder=0.05, duplicate=0.03,
                                                                        garbage=0.02, seed=3)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _get(runs, name):
    r = runs[name]
    if isinstance(r, Exception):
        raise r
    return r


def test_clean_loopback_denoised_exact_and_fast(runs):
    r = _get(runs, "clean")
    st, js = r.relay_stats, r.relay_stats["jitter"]
    # every packet ffmpeg sent came through, one out per one in, nothing concealed
    assert js["received"] == js["released"] == r.sent_packets == st["packets_out"]
    assert js["lost"] == js["duplicates"] == js["late"] == st["malformed"] == st["concealed_packets"] == 0
    assert st["samples_in"] == st["samples_out"] == PACKET * r.sent_packets
    assert st["cpu_s"] < 0.25 * st["audio_s"]  # far inside real time (about 3 % of a core measured)
    # the recording lasts as long as the input stream and the clip, within one packet (ffmpeg's
    # recorder stops at the BYE, which can overtake the last packet it has not yet read)
    assert abs(len(r.output) - PACKET * r.sent_packets) <= PACKET
    assert abs(len(r.direct) - PACKET * r.sent_packets) <= PACKET
    assert abs(len(r.output) - r.clip_samples) <= PACKET
    # the payload type came from ffmpeg's SDP (109), not from a constant
    assert "PT 109" in r.relay_stderr
    # added latency = what the relay holds the packets + the delay it adds to the audio
    algo = lag_of(r.direct, r.output, 4800)
    assert algo == pytest.approx(1008 + 312, abs=8)  # pipeline latency + Opus encoder lookahead
    transit = np.median(transit_ms(r))
    added_ms = transit + 1000 * algo / RATE
    assert added_ms < 60.0, (transit, algo)
    # denoised, against the independently decoded input
    g = denoise_gains(r.output, sample_rate=RATE, delay=lag_of(example("noisy", RATE), r.output, 4800),
                      noisy=r.direct, noisy_delay=lag_of(example("noisy", RATE), r.direct, 4800), refine=8)
    # two Opus passes make SI-SDR mostly a measure of phase; magnitude SNR and noise floor are not fooled
    assert g["mag_snr_gain_db"] > 3.0, g
    assert g["pause_gain_db"] > 15.0, g


def test_five_percent_loss_reordering_duplicates_garbage_and_fec(runs):
    r = _get(runs, "impaired")
    st, js, px = r.relay_stats, r.relay_stats["jitter"], r.proxy_in
    assert px.dropped >= 0.03 * r.sent_packets and px.reordered > 3 and px.duplicated > 3 and px.garbage > 0
    # the relay's counters agree with what the proxy did; ffmpeg sends in-band FEC here, so part of
    # the lost packets come back from the next packet's copy and the rest is concealed
    assert js["lost"] + st["tail_concealed_packets"] == px.dropped
    assert st["fec_recovered_packets"] + st["concealed_packets"] == px.dropped
    assert st["fec_recovered_packets"] > 0
    assert js["duplicates"] == px.duplicated
    assert js["reordered"] >= px.reordered - px.dropped  # a held packet can be the lost one's neighbour
    assert st["malformed"] == px.garbage
    assert js["late"] == 0  # 40 ms is enough to wait for a neighbour swapped on loopback
    # still one packet out per packet sent: the output lasts as long as the input
    assert st["packets_out"] == r.sent_packets
    assert abs(len(r.output) - PACKET * r.sent_packets) <= PACKET
    assert abs(len(r.output) - r.clip_samples) <= PACKET
    # and it is still denoised (ffmpeg's direct recording drops lost packets, so compare with the clip)
    lag = lag_of(example("noisy", RATE), r.output, 4800)
    clean = example("clean", RATE)
    n = min(len(clean), len(r.output) - lag)
    gain = (speech_to_pause_db(clean[:n], r.output[lag: lag + n], RATE)
            - speech_to_pause_db(clean[:n], example("noisy", RATE)[:n], RATE))
    assert gain > 10.0
