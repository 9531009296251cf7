"""The integration examples import against the real host packages and the many-streams server round-trips."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_livekit_examples_import_and_wire_our_processor():
    pytest.importorskip("livekit.agents", reason="needs pip install 'mediacore[integrations]'")
    from livekit import rtc

    from mediacore.integrations.livekit import MediacoreProcessor

    agent = _load("livekit_agent")
    opts = agent.room_options().audio_input
    assert isinstance(opts.noise_cancellation, MediacoreProcessor)
    assert isinstance(opts.noise_cancellation, rtc.FrameProcessor) and not callable(opts.noise_cancellation)
    assert opts.sample_rate == 24000 and opts.noise_cancellation.stats["frames"] == 0
    participant = _load("livekit_denoise_participant")
    assert asyncio.iscoroutinefunction(participant.forward_denoised)


def test_many_streams_server_gives_every_sample_back():
    server = _load("many_streams_server")
    r = asyncio.run(server.selftest(4, 1.5))
    assert r["exact"] and r["frames"] == 4 * 75
    assert r["rtt_ms_p50"] < 20.0  # 20 ms frames: processing keeps up with real time
