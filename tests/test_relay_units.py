"""RTP relay parts without sockets: packets, SDP, jitter buffer, and the relay core under impairments."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from mediacore import errors
from mediacore.integrations.rtp import (AudioDescription, JitterBuffer, MalformedPacket, OpusDecoder, OpusEncoder,
                                        RelayConfig, RelayCore, RtpPacket, build_rtcp_bye, is_rtcp, parse_rtp,
                                        parse_sdp, rtcp_packet_types)
from integration_helpers import speech_to_pause_db, to_int16
from signals import example, lag_of

FFMPEG_SDP = """v=0
o=- 0 0 IN IP4 127.0.0.1
s=No Name
c=IN IP4 127.0.0.1
t=0 0
a=tool:libavformat LIBAVFORMAT_VERSION
m=audio 41000 RTP/AVP 111
b=AS:32
a=rtpmap:111 opus/48000/2
"""

MEDIASOUP_SDP = """v=0\r
o=mediasoup 1 1 IN IP4 10.0.0.1\r
s=-\r
t=0 0\r
m=audio 5004 RTP/AVP 100 101\r
c=IN IP4 10.0.0.2\r
a=rtpmap:101 telephone-event/48000\r
a=rtpmap:100 OPUS/48000/2\r
a=fmtp:100 minptime=10;useinbandfec=1;sprop-stereo=1\r
a=rtcp-mux\r
"""


# ------------------------------------------------------------------ packets
def test_rtp_round_trip_with_csrcs_extension_and_padding():
    p = RtpPacket(payload_type=111, sequence=65535, timestamp=2**32 - 1, ssrc=0xDEADBEEF, payload=b"\xf8abc",
                  marker=True, csrcs=(1, 2), extension=(0xBEDE, b"\x10\x01\x00\x00"))
    data = p.build()
    assert parse_rtp(data) == p
    padded = bytearray(data)
    padded[0] |= 0x20
    padded += b"\x00\x00\x03"
    assert parse_rtp(bytes(padded)).payload == b"\xf8abc"


@pytest.mark.parametrize("data, message", [
    (b"\x80\x6f\x00", "expected at least 12 bytes, got 3"),
    (b"\x40" + bytes(11), "expected version 2, got 1"),
    (b"\x83\x6f" + bytes(10) + bytes(4), "3 CSRCs need 24 bytes, got 16"),
    (b"\x90\x6f" + bytes(10) + b"\xbe\xde\x00\x05", "header extension of 5 words needs 36 bytes, got 16"),
    (b"\xa0\x6f" + bytes(10) + b"\xf8\x09", "padding of 9 bytes does not fit a 2-byte payload"),
    (b"\xa0\x6f" + bytes(10) + b"\xf8\x00", "padding of 0 bytes"),
])
def test_malformed_rtp_is_refused_with_what_was_wrong(data, message):
    with pytest.raises(MalformedPacket, match=message):
        parse_rtp(data)
    assert isinstance(MalformedPacket("x"), errors.FormatError)


def test_rtcp_demux_and_compound_parsing():
    bye = build_rtcp_bye(1234)
    assert is_rtcp(bye) and not is_rtcp(RtpPacket(payload_type=111, sequence=1, timestamp=1, ssrc=1,
                                                   payload=b"x").build())
    assert rtcp_packet_types(bye) == [201, 203]
    with pytest.raises(MalformedPacket, match="packet type 201 of 8 bytes at offset 0 exceeds 6 bytes"):
        rtcp_packet_types(bye[:6])


# ---------------------------------------------------------------------- SDP
def test_sdp_from_ffmpeg_payload_type_comes_from_the_sdp():
    d = parse_sdp(FFMPEG_SDP)
    assert (d.address, d.port, d.payload_type, d.clock_rate, d.channels) == ("127.0.0.1", 41000, 111, 48000, 2)
    assert not d.stereo and not d.rtcp_mux


def test_sdp_mediasoup_style_media_level_connection_mux_and_stereo():
    d = parse_sdp(MEDIASOUP_SDP)
    assert (d.address, d.port, d.payload_type, d.encoding) == ("10.0.0.2", 5004, 100, "OPUS")
    assert d.stereo and d.rtcp_mux and d.fmtp["useinbandfec"] == "1"
    again = parse_sdp(d.to_sdp())
    assert (again.address, again.port, again.payload_type, again.fmtp) == (d.address, d.port, 100, d.fmtp)


@pytest.mark.parametrize("text, message", [
    ("v=0\nc=IN IP4 1.2.3.4\nm=video 5000 RTP/AVP 96\n", r"expected an 'm=audio' line, got media \['video'\]"),
    ("v=0\nm=audio 5000 RTP/AVP 0\na=rtpmap:0 PCMU/8000\nc=IN IP4 1.2.3.4\n",
     r"expected an opus payload type in the audio m-line, got \{'0': 'PCMU/8000'\}"),
    ("v=0\nm=audio 5000 RTP/AVP 111\na=rtpmap:111 opus/48000/2\n", "expected a 'c=' connection address"),
])
def test_sdp_errors_say_what_is_missing(text, message):
    with pytest.raises(errors.FormatError, match=message):
        parse_sdp(text)


# ------------------------------------------------------------ jitter buffer
def test_jitter_in_order_goes_straight_through():
    jb = JitterBuffer(max_wait_ms=40)
    for k in range(5):
        jb.push(100 + k, k, now=k * 0.02)
        assert jb.pop(now=k * 0.02) == [(100 + k, k)]
    assert jb.next_deadline() is None


def test_jitter_reorder_loss_late_duplicate_and_wrap():
    jb = JitterBuffer(max_wait_ms=40)
    seqs = [65533, 65535, 65534, 0, 0, 2, 3]  # reorder across the wrap, a duplicate, 1 lost
    got = []
    for i, s in enumerate(seqs):
        jb.push(s, s, now=i * 0.02)
        got += jb.pop(now=i * 0.02)
    assert [item for _, item in got] == [65533, 65534, 65535, 0]
    assert jb.next_deadline() == pytest.approx(5 * 0.02 + 0.04)
    got += jb.pop(now=0.2)  # 1 times out
    assert [item for _, item in got] == [65533, 65534, 65535, 0, None, 2, 3]
    assert [e for e, _ in got] == list(range(65533, 65540))  # extended numbers go on past 65535
    jb.push(1, "late", now=0.25)
    assert jb.pop(now=0.25) == []
    st = jb.stats
    assert (st["released"], st["lost"], st["late"], st["duplicates"], st["reordered"]) == (6, 1, 1, 1, 1)


def test_jitter_capacity_and_resync():
    jb = JitterBuffer(max_wait_ms=1000, capacity=3)
    for k, s in enumerate([10, 12, 13, 14]):
        jb.push(s, s, now=0.0)
    assert [i for _, i in jb.pop(now=0.0)] == [10, None, 12, 13, 14]  # full: the gap is given up
    jb.push(40000, "restart", now=0.1)
    assert jb.pop(now=0.1) == [(jb.extend(40000), "restart")] and jb.stats["resyncs"] == 1


def test_jitter_parameters_checked():
    with pytest.raises(errors.ParameterError, match=r"JitterBuffer: expected max_wait_ms in \[0, 2000\], got -1"):
        JitterBuffer(max_wait_ms=-1)


# --------------------------------------------------------------- relay core
def _opus_packets(pcm, *, pt=111, ssrc=0x1234, seq0=65500, ts0=2**32 - 5000):
    enc = OpusEncoder(1, bitrate=32000, application="voip", ptime_ms=20)
    out = []
    for i in range(0, len(pcm) - 959, 960):
        for payload in enc.encode(pcm[None, i:i + 960]):
            k = len(out)
            out.append(RtpPacket(payload_type=pt, sequence=(seq0 + k) & 0xFFFF, timestamp=(ts0 + 960 * k) % 2**32,
                                 ssrc=ssrc, payload=payload).build())
    return out


def _impair(packets, rng, *, loss=0.05, dup=0.03, swap=0.05):
    """Drop, duplicate and swap neighbours; add garbage, a foreign PT and a stray SSRC. Returns (stream, counts)."""
    out, counts = [], {"lost": 0, "dup": 0, "garbage": 0, "wrong_pt": 0, "foreign": 0}
    i = 0
    while i < len(packets):
        p = packets[i]
        if i > 3 and rng.random() < loss:
            counts["lost"] += 1
            i += 1
            continue
        if rng.random() < swap and i + 1 < len(packets):
            out += [packets[i + 1], p]
            i += 2
            continue
        out.append(p)
        if rng.random() < dup:
            out.append(p)
            counts["dup"] += 1
        if rng.random() < 0.02:
            out.append(bytes(rng.integers(0, 256, 7, dtype=np.uint8)) if rng.random() < 0.5 else b"\x80\x6f")
            counts["garbage"] += 1
        if rng.random() < 0.02:
            q = bytearray(p)
            q[1] = (q[1] & 0x80) | 13  # comfort noise PT: not ours
            out.append(bytes(q))
            counts["wrong_pt"] += 1
        if rng.random() < 0.01:
            q = bytearray(p)
            q[8:12] = struct.pack("!I", 0xBAD)
            out.append(bytes(q))
            counts["foreign"] += 1
        i += 1
    return out, counts


def _decode(packets, channels=1):
    dec = OpusDecoder(channels)
    return np.concatenate([dec.decode(parse_rtp(p).payload) for p in packets], axis=1)[0]


def test_relay_core_under_loss_reorder_duplicates_and_garbage():
    pcm = to_int16(example("noisy", 48000))
    packets = _opus_packets(pcm)
    stream, injected = _impair(packets, np.random.default_rng(7))
    assert injected["lost"] > 0.03 * len(packets)
    core = RelayCore(RelayConfig(input=parse_sdp(FFMPEG_SDP), ssrc=42, max_wait_ms=40))
    out, t = [], 0.0
    for data in stream:
        t += 0.02
        got, _ = core.receive(data, t)
        out += got
        out += core.tick(t)
    out += core.finish()
    st, js = core.stats, core.jitter_stats
    assert js["lost"] == st["concealed_packets"] == injected["lost"] - (packets[-1] not in stream)
    assert js["duplicates"] == injected["dup"] and js["reordered"] > 0
    assert st["malformed"] == injected["garbage"] and st["wrong_payload_type"] == injected["wrong_pt"]
    assert st["foreign_ssrc"] == injected["foreign"] and st["ssrc_changes"] == 0
    # one packet out per packet in (concealed ones included), a continuous stream of our own
    assert st["packets_out"] == len(packets) - (packets[-1] not in stream)
    parsed = [parse_rtp(p) for p in out]
    assert {p.ssrc for p in parsed} == {42} and {p.payload_type for p in parsed} == {111}
    assert parsed[0].marker and not any(p.marker for p in parsed[1:])
    assert all((b.sequence - a.sequence) & 0xFFFF == 1 for a, b in zip(parsed, parsed[1:]))
    assert all((b.timestamp - a.timestamp) % 2**32 == 960 for a, b in zip(parsed, parsed[1:]))
    assert st["samples_in"] == st["samples_out"] == 960 * len(out)
    # denoised: speech-to-pause level up by > 10 dB against the decoded input
    y = _decode(out)
    x = _decode(packets)
    clean = example("clean", 48000)
    lag = lag_of(x, y, 4800)
    # pipeline latency + encoder lookahead (312), within the few samples a lossy codec shifts
    assert lag == pytest.approx(core.processor.delay_samples + 312, abs=8)
    n = len(y) - lag
    gain = speech_to_pause_db(clean[:n], y[lag:], 48000) - speech_to_pause_db(clean[:n], x[:n], 48000)
    assert gain > 10.0


def test_relay_core_follows_a_restarted_sender():
    pcm = to_int16(example("noisy", 48000)[:48000])
    first = _opus_packets(pcm[:24000], ssrc=1, seq0=100)
    second = _opus_packets(pcm[24000:], ssrc=2, seq0=9)
    core = RelayCore(RelayConfig(input=parse_sdp(FFMPEG_SDP), ssrc_switch_packets=3))
    out = []
    for k, data in enumerate(first + second):
        out += core.receive(data, k * 0.02)[0]
    out += core.finish()
    assert core.stats["ssrc_changes"] == 1 and core.stats["foreign_ssrc"] == 3
    assert core.stats["packets_out"] == len(first) + len(second) - 2  # two dropped while deciding
    assert len({parse_rtp(p).ssrc for p in out}) == 1


def test_relay_config_checks():
    d = parse_sdp(FFMPEG_SDP)
    with pytest.raises(errors.ParameterError, match=r"Relay: expected application in \('voip', 'audio', 'lowdelay'\)"):
        RelayConfig(input=d, application="music")
    pcmu = AudioDescription(address="1.2.3.4", port=5000, payload_type=0, encoding="PCMU", clock_rate=8000, channels=1)
    with pytest.raises(errors.FormatError, match="Relay: expected opus/48000 in the SDP, got PCMU/8000"):
        RelayConfig(input=pcmu)


# ---------------------------------------------------------------------- CLI
def test_relay_command_errors(tmp_path, capsys):
    from mediacore.cli import main

    assert main(["relay", "--sdp", str(tmp_path / "none.sdp"), "--send", "127.0.0.1:5000"]) == 1
    assert "mediacore relay: error: relay: cannot read the SDP" in capsys.readouterr().err
    pcmu = tmp_path / "pcmu.sdp"
    pcmu.write_text("v=0\nc=IN IP4 127.0.0.1\nm=audio 5000 RTP/AVP 0\na=rtpmap:0 PCMU/8000\n")
    assert main(["relay", "--sdp", str(pcmu), "--send", "127.0.0.1:5000"]) == 1
    assert "SDP: expected an opus payload type in the audio m-line, got {'0': 'PCMU/8000'}" in capsys.readouterr().err
    assert main(["relay", "--sdp", str(pcmu), "--send", "localhost"]) == 2
    assert "expected HOST:PORT with a port in 1..65535, got 'localhost'" in capsys.readouterr().err


def test_relay_core_stereo_from_the_sdp():
    left = to_int16(example("noisy", 48000)[:48000])
    enc = OpusEncoder(2, bitrate=64000, application="audio", ptime_ms=20)
    pcm = np.stack([left, left // 2])
    packets = [RtpPacket(payload_type=100, sequence=k, timestamp=960 * k, ssrc=5, payload=p).build()
               for k, p in enumerate(p for i in range(0, 48000, 960) for p in enc.encode(pcm[:, i:i + 960]))]
    core = RelayCore(RelayConfig(input=parse_sdp(MEDIASOUP_SDP)), agc=False)  # AGC would level the channels
    assert core.channels == 2
    out = [d for k, p in enumerate(packets) for d in core.receive(p, k * 0.02)[0]] + core.finish()
    assert core.stats["packets_out"] == len(packets) and core.processor.num_channels == 2
    y = OpusDecoder(2)
    stereo = np.concatenate([y.decode(parse_rtp(p).payload) for p in out], axis=1)
    # the channels stay apart: the right one is 6 dB below the left
    assert 10 * np.log10(np.mean(stereo[0] ** 2) / np.mean(stereo[1] ** 2)) == pytest.approx(6.0, abs=1.5)


def test_interleaved_bytes_of_odd_length_are_refused():
    from mediacore.integrations import StreamProcessor

    with pytest.raises(errors.FormatError, match=r"Relay: expected int16 PCM \(an even number of bytes\), got 3 bytes"):
        StreamProcessor(name="Relay").process_interleaved(b"abc", sample_rate=48000, num_channels=1)


def test_relay_core_fills_a_timestamp_jump_and_adds_fec_on_request():
    pcm = to_int16(example("noisy", 48000)[:48000])
    packets = _opus_packets(pcm, seq0=0, ts0=0)
    # discontinuous transmission: after packet 20 the sender skipped 200 ms (10 packets) without a sequence gap
    shifted = []
    for k, data in enumerate(packets):
        p = parse_rtp(data)
        if k > 20:
            p.timestamp += 9600
        shifted.append(p.build())
    plain = RelayCore(RelayConfig(input=parse_sdp(FFMPEG_SDP)))
    fec = RelayCore(RelayConfig(input=parse_sdp(FFMPEG_SDP), fec_loss_percent=10, bitrate=24000))
    outs = {}
    for name, core in (("plain", plain), ("fec", fec)):
        outs[name] = [d for k, p in enumerate(shifted) for d in core.receive(p, k * 0.02)[0]] + core.finish()
        assert core.stats["gap_fill_samples"] == 9600 and core.jitter_stats["lost"] == 0
        assert core.stats["samples_out"] == 960 * len(packets) + 9600  # the timeline is kept
    assert fec.encoder.options["fec"] == "1" and fec.encoder.options["packet_loss"] == "10"
    assert "fec" not in plain.encoder.options
    with pytest.raises(errors.ParameterError, match=r"expected fec_loss_percent in 0..100, got 150"):
        RelayConfig(input=parse_sdp(FFMPEG_SDP), fec_loss_percent=150)


def test_relay_core_recovers_lost_packets_from_in_band_fec():
    pcm = to_int16(example("noisy", 48000))
    enc = OpusEncoder(1, bitrate=32000, application="voip", ptime_ms=20, fec_loss_percent=20)
    payloads = [p for i in range(0, len(pcm) - 959, 960) for p in enc.encode(pcm[None, i:i + 960])]
    packets = [RtpPacket(payload_type=111, sequence=k, timestamp=960 * k, ssrc=9, payload=p).build()
               for k, p in enumerate(payloads)]
    lost = set(range(12, len(packets) - 2, 9))

    def relay(stream, **cfg):
        core = RelayCore(RelayConfig(input=parse_sdp(FFMPEG_SDP), **cfg), agc=False)
        out = [d for k, p in enumerate(stream) for d in core.receive(p, k * 0.02)[0] + core.tick(k * 0.02)]
        out += core.finish()
        return core, _decode(out)

    _, reference = relay(packets)
    impaired = [p for k, p in enumerate(packets) if k not in lost]
    with_fec, y_fec = relay(impaired)
    without, y_plc = relay(impaired, decode_fec=False)
    assert with_fec.decoder.backend == "libopus"
    st = with_fec.stats
    assert st["fec_recovered_packets"] + st["concealed_packets"] == len(lost) == without.stats["concealed_packets"]
    # every lost packet whose successor carries an FEC copy is recovered from it (libopus adds one to
    # SILK/hybrid frames, i.e. speech; not to CELT-only ones)
    carried = sum(with_fec.decoder.has_fec(payloads[k + 1]) for k in lost)
    assert st["fec_recovered_packets"] == carried >= 0.4 * len(lost)
    assert len(y_fec) == len(y_plc) == len(reference)

    def snr(y):
        return 10 * np.log10(np.sum(reference.astype(np.float64) ** 2) / np.sum((y - reference).astype(np.float64) ** 2))

    assert snr(y_fec) > snr(y_plc) + 3.0, (snr(y_fec), snr(y_plc))


def test_opus_decoder_falls_back_to_pyav_and_still_conceals(monkeypatch):
    import mediacore.codec._libopus as libopus

    def unavailable(*a, **k):
        raise errors.MissingDependencyError("no libopus")

    monkeypatch.setattr(libopus, "LibOpusDecoder", unavailable)
    dec = OpusDecoder(1)
    assert dec.backend == "pyav"
    pcm = to_int16(np.sin(2 * np.pi * 440 * np.arange(9600) / 48000).astype(np.float32) * 0.3)
    payloads = [parse_rtp(p).payload for p in _opus_packets(pcm)]
    assert dec.decode(payloads[0]).shape == (1, 960) and not dec.has_fec(payloads[1])
    y = dec.conceal(960)  # extrapolates the tone rather than going silent
    assert y.shape == (1, 960) and np.sqrt(np.mean(y ** 2)) > 0.05
