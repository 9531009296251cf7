"""A livekit-agents voice agent whose input is cleaned by mediacore instead of a cloud filter.

The only mediacore line is the ``noise_cancellation=`` of the room's audio
input; everything else is a plain livekit-agents worker.  The processor is
built per session and warmed up for the agents' input rate (24 kHz by
default) before the first frame arrives.  Since ``MediacoreProcessor`` is not
callable, livekit-agents uses it as the processor itself (a callable would be
taken for a per-participant selector).

::

    pip install 'mediacore[integrations]'
    export LIVEKIT_URL=... LIVEKIT_API_KEY=... LIVEKIT_API_SECRET=...
    python examples/livekit_agent.py dev

The STT, LLM and TTS below are LiveKit inference model names; swap in any
plugins you use.  ``agc=False``: the agents' own input AGC stays in charge of
level when noise cancellation is configured.
"""

from __future__ import annotations

import os

from livekit.agents import Agent, AgentServer, AgentSession, JobContext, cli
from livekit.agents.voice import room_io

from mediacore.integrations.livekit import MediacoreProcessor

INPUT_RATE = 24000  # AudioInputOptions' default sample rate

server = AgentServer()


def room_options() -> room_io.RoomOptions:
    """Room I/O with mediacore cleaning the participant's microphone."""
    return room_io.RoomOptions(audio_input=room_io.AudioInputOptions(
        sample_rate=INPUT_RATE,
        noise_cancellation=MediacoreProcessor(sample_rate=INPUT_RATE, agc=False),
    ))


@server.rtc_session()
async def entrypoint(ctx: JobContext) -> None:
    session = AgentSession(
        stt=os.environ.get("AGENT_STT", "deepgram/nova-3:en"),
        llm=os.environ.get("AGENT_LLM", "openai/gpt-4.1-mini"),
        tts=os.environ.get("AGENT_TTS", "cartesia/sonic-3"),
    )
    await session.start(room=ctx.room, agent=Agent(instructions="You are a helpful voice assistant."),
                        room_options=room_options())


if __name__ == "__main__":
    cli.run_app(server)
