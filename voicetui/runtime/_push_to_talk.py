"""Push-to-talk: a turn the user opens and commits by hand. The first press opens it (the mic
on, the session's turn detection manual, what was heard before forgotten); the second commits
it; cancelling forgets it. Either way turn detection goes back to the agent's own mode."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..agents.voice import AgentSession
from ._session_ops import interrupt_quietly


def can_take_turns(session: AgentSession[Any]) -> bool:
    """The session listens to audio: its agent (or the session) has an STT or a VAD."""
    agent = session.current_agent
    return any(m is not None for m in (agent.stt, agent.vad, session.stt, session.vad))


class PushToTalk:
    """``on_change``: called when the turn opens or closes (the mic and status follow it)."""

    def __init__(self, on_change: Callable[[], None]) -> None:
        self._on_change = on_change
        self.open = False

    async def press(self, session: AgentSession[Any], mode: str) -> None:
        """Open a turn, or commit the open one (raises what makes it impossible)."""
        if self.open:
            try:
                await session.commit_user_turn()
            finally:
                self.close(session)
            return
        if session.input.audio is None:
            raise RuntimeError(f"push-to-talk needs a microphone ({mode.upper()} mode)")
        if not can_take_turns(session):
            raise RuntimeError("push-to-talk needs speech recognition (an STT or a VAD)")
        await interrupt_quietly(session)
        session.set_turn_detection("manual")  # no end-of-turn commits: the key ends the turn
        session.clear_user_turn()  # what was heard before the key press is not this turn
        self.open = True
        self._on_change()

    def cancel(self, session: AgentSession[Any]) -> None:
        """Forget the open turn (nothing open: nothing to do)."""
        if self.open:
            session.clear_user_turn()
            self.close(session)

    def close(self, session: AgentSession[Any]) -> None:
        self.open = False
        if session.running:
            session.set_turn_detection(None)  # back to the agent's own mode
        self._on_change()
