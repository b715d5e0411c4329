"""Replaying a recording: its user audio fed to a new session (current agent and models), which
is recorded too, then compared with the original (:func:`.diff.diff`).

Two paces:

- ``realtime=True``: the user audio is played on the loop clock exactly as recorded (silences,
  talking over the agent and all), then silence until the last turn is answered. Typed
  messages are sent at the moment they were committed.
- ``realtime=False`` ("as fast as possible"): the audio is cut at the original user turns
  (where each user message was committed); each piece is fed at once, as soon as the new session
  has answered the previous turn (the agent is quiet for ``settle`` seconds); meanwhile the
  input plays silence in real time. A typed message is sent in its place in that sequence,
  once the audio before it was answered. Conversations are reproduced turn by turn, but a user
  talking over the agent is not, and the VAD sees each piece's end of speech immediately, so
  latency figures are only comparable between realtime runs.

A typed message is sent as the app sends one: the agent is interrupted, then answers it.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from livekit import rtc

from ..agents.audio import make_frame
from ..agents.llm.chat_context import ChatMessage
from ..agents.testing.fake_io import FakeAudioOutput
from ..agents.utils.aio import cancel_and_wait
from ..agents.voice.agent import Agent
from ..agents.voice.agent_session import AgentSession
from ..agents.voice.events import ConversationItemAddedEvent
from ..agents.voice.io import AudioInput
from ..conversation import Turn
from ..events import SessionEventModel
from .diff import compare, diff
from .load import Recording, load_recording
from .recorder import Recorder
from .whatif import format_whatif, match_turns

logger = logging.getLogger("voicetui.recording")

SessionSetup = tuple[AgentSession[Any], Agent]
SessionFactory = Callable[[], Awaitable[SessionSetup] | SessionSetup]
"""Returns ``(AgentSession, Agent)``, not started. A session without an audio output gets one
that plays in real time on the loop clock (nothing is heard)."""


class ReplayAudioInput(AudioInput):
    """Mono int16 ``pcm`` as 10 ms frames. ``gate(k)`` (fast pace) is awaited before piece
    ``k`` of the audio cut at ``cuts`` (seconds); silence is played while it waits and after
    the end (until :meth:`close`). :attr:`fed` is set once all the audio was given."""

    def __init__(
        self,
        pcm: np.ndarray,
        sample_rate: int,
        *,
        realtime: bool,
        cuts: Sequence[float] = (),
        gate: Callable[[int], Awaitable[None]] | None = None,
        frame_duration: float = 0.01,
    ) -> None:
        super().__init__(label="ReplayAudioInput")
        self._pcm = np.ascontiguousarray(pcm, dtype=np.int16)
        self._rate = sample_rate
        self._realtime = realtime
        self._cuts = sorted(cuts)
        self._gate = gate
        self._n = max(1, round(sample_rate * frame_duration))
        self._closed = False
        self.fed = asyncio.Event()

    def close(self) -> None:
        self._closed = True

    def __aiter__(self) -> AsyncIterator[rtc.AudioFrame]:
        return self._frames()

    def _frame(self, lo: int) -> rtc.AudioFrame:
        chunk = self._pcm[lo : lo + self._n]
        if len(chunk) < self._n:
            chunk = np.concatenate([chunk, np.zeros(self._n - len(chunk), dtype=np.int16)])
        return make_frame(chunk, self._rate)

    async def _frames(self) -> AsyncIterator[rtc.AudioFrame]:
        loop = asyncio.get_running_loop()
        step = self._n / self._rate
        silence = np.zeros(self._n, dtype=np.int16)
        clock = loop.time()

        async def tick() -> None:
            nonlocal clock
            clock = max(clock + step, loop.time() - 0.1)
            await asyncio.sleep(max(0.0, clock - loop.time()))

        total = len(self._pcm)
        if self._realtime or self._gate is None:
            pieces = [(0, total)]
        else:  # one piece per cut, even an empty one: gate(k) is "before user turn k + 1"
            bounds = [0, *(min(total, round(c * self._rate)) for c in self._cuts), total]
            pieces = [(a, max(a, b)) for a, b in itertools.pairwise(bounds)]
        for k, (lo, hi) in enumerate(pieces):
            if self._gate is not None and not self._realtime:
                waiter = asyncio.ensure_future(self._gate(k))
                try:
                    while not waiter.done() and not self._closed:
                        await tick()
                        yield make_frame(silence, self._rate)
                finally:
                    await cancel_and_wait(waiter)
                clock = loop.time()
            for i, pos in enumerate(range(lo, hi, self._n)):
                if self._closed:
                    return
                if self._realtime:
                    await tick()
                elif i % 20 == 19:
                    await asyncio.sleep(0)
                yield self._frame(pos)
        self.fed.set()
        clock = loop.time()
        while not self._closed:
            await tick()
            yield make_frame(silence, self._rate)


class _Progress:
    """Watches the new session: user turns committed, and whether the agent is quiet."""

    def __init__(self, session: AgentSession[Any]) -> None:
        self.session = session
        self.user_turns = 0
        self._changed = asyncio.Event()
        for name in (
            "conversation_item_added",
            "agent_state_changed",
            "user_state_changed",
            "speech_created",
            "function_tools_started",
            "function_tools_executed",
        ):
            session.on(name, self._on_event)

    def _on_event(self, ev: SessionEventModel) -> None:
        match ev:
            case ConversationItemAddedEvent(item=ChatMessage(role="user")):
                self.user_turns += 1
            case _:
                pass
        self._changed.set()

    def quiet(self) -> bool:
        s = self.session
        speech = s.current_speech
        return s.agent_state in ("listening", "idle") and (speech is None or speech.done())

    async def _changes(self, within: float) -> bool:
        """Wait for the next session event; False if none came ``within`` seconds."""
        self._changed.clear()
        try:
            async with asyncio.timeout(within):
                await self._changed.wait()
        except TimeoutError:
            return False
        return True

    async def wait_turns(self, n: int, limit: float) -> None:
        """Until ``n`` user turns were committed (at most ``limit`` seconds)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while self.user_turns < n and loop.time() < deadline:
            await self._changes(deadline - loop.time())

    async def wait_quiet(self, settle: float, limit: float) -> None:
        """Until the agent has been quiet for ``settle`` seconds (at most ``limit``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while loop.time() < deadline:
            if self.quiet():
                if not await self._changes(min(settle, max(0.0, deadline - loop.time()))):
                    return
            else:
                await self._changes(max(0.0, deadline - loop.time()))
        logger.warning("replay: the agent did not go quiet within %.0f s", limit)


async def send_typed(session: AgentSession[Any], text: str, *, wait: float = 5.0) -> None:
    """Send ``text`` as the app sends what the user typed: interrupt the agent (wait at most
    ``wait`` seconds for what it said to be recorded), then answer the message."""
    if not text.strip():
        return
    try:
        await asyncio.wait_for(asyncio.shield(session.interrupt()), wait)
    except TimeoutError:
        logger.warning("replay: the interrupted speech took more than %.0f s to stop", wait)
    session.generate_reply(user_input=text.strip())


async def _type_on_time(session: AgentSession[Any], rec: Recorder, turns: list[Turn]) -> None:
    """Realtime pace: each typed message at the moment it was committed in the original."""
    loop = asyncio.get_running_loop()
    for turn in turns:
        if turn.typed:
            await asyncio.sleep(max(0.0, turn.t - rec.rel(loop.time())))
            await send_typed(session, turn.user or "")


async def replay(
    recording: Recording,
    *,
    session_factory: SessionFactory,
    realtime: bool = False,
    out_root: str | Path | None = None,
    turn_timeout: float = 15.0,
    settle: float = 1.0,
    max_wait: float = 120.0,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Feed ``recording``'s user audio to a new session from ``session_factory`` and record
    it under ``out_root`` (default: next to the original); returns the new recording's folder.
    ``turn_timeout``: how long to wait for the new session to commit each user turn;
    ``settle``: how long the agent must stay quiet before a turn counts as answered."""
    made = session_factory()
    session, agent = await made if inspect.isawaitable(made) else made
    progress = _Progress(session)
    turns = recording.user_turns
    expected = len(turns)

    async def gate(k: int) -> None:
        if k > 0:
            turn = turns[k - 1]
            if turn.typed:  # the audio before it was heard and answered: type it now
                await progress.wait_quiet(settle, max_wait)
                await send_typed(session, turn.user or "")
            await progress.wait_turns(k, turn_timeout)
        await progress.wait_quiet(settle, max_wait)

    inp = ReplayAudioInput(
        recording.user_audio,
        recording.sample_rate,
        realtime=realtime,
        cuts=[t.t for t in turns],
        gate=gate,
    )
    own_output: FakeAudioOutput | None = None
    if session.output.audio is None:
        own_output = FakeAudioOutput()
        session.output.audio = own_output
    session.input.audio = inp
    rec = Recorder(
        out_root if out_root is not None else recording.directory.parent,
        session=session,
        sample_rate=recording.sample_rate,
        metadata={
            "replay_of": recording.directory.name,
            "realtime": realtime,
            **(metadata or {}),
        },
    )
    await rec.start()
    typist: asyncio.Task[None] | None = None
    try:
        rec.attach()
        await session.start(agent)
        if realtime and any(t.typed for t in turns):
            typist = asyncio.create_task(
                _type_on_time(session, rec, turns), name="replay.typed_turns"
            )
        await inp.fed.wait()
        if typist is not None:
            await typist
        await progress.wait_turns(expected, turn_timeout)
        await progress.wait_quiet(settle, max_wait)
    finally:
        await cancel_and_wait(typist)
        await rec.stop()
        inp.close()
        await session.aclose()
        if own_output is not None:
            await own_output.aclose()
    assert rec.directory is not None
    return rec.directory


async def replay_and_diff(
    directory: str | Path,
    *,
    session_factory: SessionFactory,
    realtime: bool = False,
    out_root: str | Path | None = None,
    width: int = 120,
    out: TextIO | None = None,
    whatif: list[str] | None = None,
) -> int:
    """Replay the recording in ``directory``, print the new folder and the side-by-side diff
    (and, for a what-if replay with the ``whatif`` settings changed, turn by turn where the
    user's turns ended now). Returns 0 when the user turns and tool calls are the same, 1 when
    they differ, 2 when the replay could not run."""
    out = out or sys.stdout
    try:
        original = load_recording(directory)
    except (OSError, ValueError) as e:
        print(f"cannot read {directory}: {e}", file=out)
        return 2
    try:
        new_dir = await replay(
            original, session_factory=session_factory, realtime=realtime, out_root=out_root
        )
        new = load_recording(new_dir)
    except Exception as e:
        logger.exception("replay failed")
        print(f"replay failed: {type(e).__name__}: {e}", file=out)
        return 2
    print(f"replayed {original.directory} → {new_dir}", file=out)
    print(diff(original, new, width=width), file=out, end="")
    if whatif is not None:
        print(format_whatif(match_turns(original, new), whatif), file=out)
    cmp = compare(original, new)
    return 0 if cmp.tool_calls_equal and cmp.user_equal else 1


def replay_main(
    directory: str | Path,
    *,
    session_factory: SessionFactory,
    realtime: bool = False,
    out_root: str | Path | None = None,
    width: int = 120,
    out: TextIO | None = None,
    whatif: list[str] | None = None,
) -> int:
    """``voicetui replay DIR`` (see :func:`replay_and_diff`), on its own event loop."""
    return asyncio.run(
        replay_and_diff(
            directory,
            session_factory=session_factory,
            realtime=realtime,
            out_root=out_root,
            width=width,
            out=out,
            whatif=whatif,
        )
    )
