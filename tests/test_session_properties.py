"""Property-based test: random interleavings of user speech, ``say``, ``generate_reply``,
``interrupt`` and waits — with random session options, tool calls (slow, failing) and LLM
failures — must leave the session consistent: no deadlock, valid agent/user state sequences,
history equal to the announced items, every speech finished and no task left behind.

Each hypothesis example runs on its own looptime event loop (virtual time), so a whole
conversation takes a fraction of a second of wall time; a real-time alarm catches a loop that
stops yielding (virtual time then stands still). ``VOICETUI_PROPERTY_EXAMPLES=1000`` runs more
examples; ``--hypothesis-show-statistics`` shows what they exercised.

The tests at the end are the framework bugs the property test found, reduced to minimal
cases, kept as regression tests (all four are fixed)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import os
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import looptime
import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from livekit import rtc

from voicetui.agents import Agent, AgentSession, LLMError, ToolError, function_tool
from voicetui.agents.llm import ChatContext, ChatMessage
from voicetui.agents.testing import (
    FakeAudioInput,
    FakeAudioOutput,
    FakeLLM,
    FakeLLMResponse,
    FakeSTT,
    FakeTextOutput,
    FakeToolCall,
    FakeTTS,
    FakeVAD,
    Utterance,
)
from voicetui.agents.voice.events import CloseReason, EventTypes

from .conftest import EventLog

VOCAB = ("hello", "stop", "wait", "yes", "no", "weather", "please", "now")
STEPS_BOUND = 120.0  # virtual seconds for the scripted steps
SETTLE_BOUND = 120.0  # ... for the session to go quiet afterwards
CLOSE_BOUND = 30.0  # ... for aclose()
INTERRUPT_BOUND = 10.0  # ... for session.interrupt()'s future
REAL_TIME_LIMIT = 10.0  # wall seconds per example (examples take well under one)


# --- scenario model -------------------------------------------------------------------------
@dataclass(frozen=True)
class UserSays:
    utterance: Utterance


@dataclass(frozen=True)
class Say:
    text: str
    allow_interruptions: bool


@dataclass(frozen=True)
class BargeIn:
    """The agent starts saying ``text``; the user talks over it (as soon as the microphone is
    free, ``utterance.silence_before`` later)."""

    text: str
    utterance: Utterance


@dataclass(frozen=True)
class GenerateReply:
    user_input: str


@dataclass(frozen=True)
class Interrupt:
    wait: bool


@dataclass(frozen=True)
class Wait:
    seconds: float


Step = UserSays | Say | BargeIn | GenerateReply | Interrupt | Wait


@dataclass
class Scenario:
    options: dict[str, Any]
    responses: list[FakeLLMResponse]
    steps: list[Step]


def tenths(lo: int, hi: int) -> st.SearchStrategy[float]:
    """Seconds on a 0.1 s grid (readable counterexamples)."""
    return st.integers(lo, hi).map(lambda n: n / 10)


words = st.lists(st.sampled_from(VOCAB), min_size=1, max_size=5).map(" ".join)

tool_calls = st.builds(
    lambda delay, outcome: FakeToolCall("lookup", {"delay": delay, "outcome": outcome}),
    tenths(0, 25),
    st.sampled_from(["ok", "error", "none"]),
)

llm_responses = st.one_of(
    st.builds(  # a spoken reply
        FakeLLMResponse,
        content=words,
        ttft=tenths(0, 15),
        tokens_per_second=st.sampled_from([0.0, 5.0, 20.0]),
    ),
    st.builds(  # tool calls, maybe with some words first
        FakeLLMResponse,
        content=st.one_of(st.just(""), words),
        tool_calls=st.lists(tool_calls, min_size=1, max_size=2),
        ttft=tenths(0, 15),
    ),
    st.builds(  # a failure, after its time to first token
        lambda ttft: FakeLLMResponse(ttft=ttft, error=LLMError("boom", recoverable=False)),
        tenths(0, 10),
    ),
)

user_says = st.builds(
    lambda speech, silence, transcript: UserSays(Utterance(speech, silence, transcript)),
    tenths(1, 20),
    tenths(0, 20),
    st.one_of(words, words, st.just("")),  # "" = a noise: voice without words
)
steps: st.SearchStrategy[Step] = st.one_of(
    user_says,
    user_says,  # (twice: the user talks more often than anything else happens)
    st.builds(Say, text=words, allow_interruptions=st.booleans()),
    st.builds(
        lambda text, speech, silence, transcript: BargeIn(
            text, Utterance(speech, silence, transcript)
        ),
        st.lists(st.sampled_from(VOCAB), min_size=3, max_size=8).map(" ".join),
        tenths(1, 15),
        tenths(0, 15),
        st.one_of(words, st.just("")),
    ),
    st.builds(GenerateReply, user_input=words.map(lambda w: f"typed {w}")),
    st.builds(Interrupt, wait=st.booleans()),
    st.builds(Wait, seconds=tenths(0, 30)),
)


@st.composite
def session_options(draw: st.DrawFn) -> dict[str, Any]:
    min_delay = draw(tenths(2, 10))
    return {
        "allow_interruptions": draw(st.sampled_from([True, True, True, False])),
        "discard_audio_if_uninterruptible": draw(st.booleans()),
        "min_interruption_duration": draw(tenths(1, 10)),
        "min_interruption_words": draw(st.sampled_from([0, 0, 1, 2])),
        "false_interruption_timeout": draw(st.one_of(st.none(), tenths(5, 20))),
        "resume_false_interruption": draw(st.booleans()),
        "preemptive_generation": draw(st.booleans()),
        "min_endpointing_delay": min_delay,
        "max_endpointing_delay": min_delay + draw(tenths(0, 30)),
        "max_tool_steps": draw(st.integers(1, 3)),
        "turn_detection": draw(st.sampled_from(["vad", "stt"])),
        "user_away_timeout": draw(st.one_of(st.none(), tenths(10, 50))),
    }


scenarios = st.builds(
    Scenario,
    options=session_options(),
    responses=st.lists(llm_responses, min_size=1, max_size=6),
    steps=st.lists(steps, min_size=2, max_size=6),
)


# --- the agent ------------------------------------------------------------------------------
class ToolAgent(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="Be brief.")

    @function_tool
    async def lookup(self, delay: float, outcome: str) -> str | None:
        """Look something up: takes ``delay`` seconds; ``outcome`` is ok, error or none."""
        await asyncio.sleep(delay)
        if outcome == "error":
            raise ToolError("lookup failed")
        if outcome == "none":
            return None  # no reply needed for this call
        return f"found it after {delay:g}s"


# --- running one example --------------------------------------------------------------------
class Livelock(Exception):
    """Raised by the real-time alarm into code that keeps the event loop busy forever."""


@contextlib.contextmanager
def real_time_limit(seconds: float) -> Iterator[list[str]]:
    """Virtual-time bounds cannot catch a busy loop that never yields (virtual time stands
    still): a real-time alarm interrupts it and records where it spun (POSIX main thread)."""
    spins: list[str] = []
    if not hasattr(signal, "setitimer") or threading.current_thread() is not (
        threading.main_thread()
    ):
        yield spins
        return

    def on_alarm(_signum: int, frame: FrameType | None) -> None:
        spins.append("".join(traceback.format_stack(frame, limit=6)))
        raise Livelock(f"still running after {seconds:g}s of real time")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)  # (again every second while it spins)
    try:
        yield spins
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class VoiceAwareMic(FakeAudioInput):
    """Knows how long the user's voice (the scripted utterance, not silence) has been on."""

    _voice_since: float | None = None

    def __aiter__(self) -> AsyncIterator[rtc.AudioFrame]:
        return self._watched(super().__aiter__())

    async def _watched(
        self, frames: AsyncIterator[rtc.AudioFrame]
    ) -> AsyncIterator[rtc.AudioFrame]:
        async for frame in frames:
            voice = "transcript" in frame.userdata  # (FakeAudioInput marks voice frames)
            if not voice:
                self._voice_since = None
            elif self._voice_since is None:
                self._voice_since = asyncio.get_running_loop().time() - 0.01
            yield frame

    def voice_duration(self) -> float:
        since = self._voice_since
        return 0.0 if since is None else asyncio.get_running_loop().time() - since


def may_be_uninterruptible(sc: Scenario) -> bool:
    return not sc.options["allow_interruptions"] or any(
        isinstance(step, Say) and not step.allow_interruptions for step in sc.steps
    )


@dataclass
class Probe:
    """Watches a session: every event (stamped on the loop clock) and what was true at the
    moment each agent state was entered."""

    session: AgentSession[None]
    out: FakeAudioOutput
    text: FakeTextOutput
    log: EventLog
    t0: float
    timeline: list[tuple[float, str]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    typed: list[str] = field(default_factory=list)
    """What was typed (generate_reply(user_input=...)); typed texts start with "typed "."""
    said_texts: dict[str, str] = field(default_factory=dict)  # say() speech id -> its text
    pauses: int = 0  # speaking -> listening while the speech goes on (false interruption)
    interrupted_before_close: set[str] = field(default_factory=set)  # speech ids

    def __post_init__(self) -> None:
        stamped: tuple[EventTypes, ...] = (
            "agent_state_changed",
            "user_state_changed",
            "conversation_item_added",
            "speech_created",
            "user_input_transcribed",
            "agent_false_interruption",
            "error",
        )
        for name in stamped:
            self.session.on(name, self._stamp)
        self.session.on("agent_state_changed", self._on_agent_state)

    def t(self) -> float:
        return asyncio.get_running_loop().time() - self.t0

    def _stamp(self, ev: Any) -> None:
        detail = {
            "agent_state_changed": lambda: f"{ev.old_state}->{ev.new_state}",
            "user_state_changed": lambda: f"{ev.old_state}->{ev.new_state}",
            "conversation_item_added": lambda: (
                f"{ev.item.role}: {ev.item.text_content!r}"
                if isinstance(ev.item, ChatMessage)
                else f"handoff to {ev.item.new_agent_id}"
            ),
            "speech_created": lambda: f"{ev.source} {ev.speech_id}",
            "user_input_transcribed": lambda: f"{ev.transcript!r} final={ev.is_final}",
            "agent_false_interruption": lambda: f"resumed={ev.resumed}",
            "error": lambda: f"{ev.source}: {ev.message}",
        }[ev.type]()
        self.timeline.append((round(self.t(), 3), f"{ev.type} {detail}"))

    def _on_agent_state(self, ev: Any) -> None:
        # "thinking" is entered by a reply once the scheduler authorized it (it is the current
        # speech), or between speeches while one whose audio is out still runs its tools (or
        # one is queued); "speaking" when the current speech's audio starts playing (the fake
        # output only starts a segment while unpaused) or when a paused speech resumes. So at
        # "speaking" there is a current speech, it is not finished and the output is not
        # paused; at "thinking", a current speech or an uninterrupted one not done yet.
        speech = self.session.current_speech
        if ev.new_state == "listening" and speech is not None and not speech.done():
            self.pauses += 1
        if ev.new_state not in ("thinking", "speaking"):
            return
        where = f"at t={self.t():.3f} ({ev.old_state}->{ev.new_state})"
        handles = [e.speech_handle for e in self.log.of("speech_created")]
        waiting = any(not h.done() and not h.interrupted for h in handles)
        if ev.new_state == "thinking" and speech is None and waiting:
            return
        if speech is None:
            self.violations.append(f"{where}: no current speech")
        elif speech.done():
            self.violations.append(f"{where}: the current speech {speech.id} is already done")
        if ev.new_state == "speaking" and self.out.paused:
            self.violations.append(f"{where}: the audio output is paused")


async def run_scenario(sc: Scenario) -> None:
    loop = asyncio.get_running_loop()
    tasks_before = asyncio.all_tasks()
    llm = FakeLLM(list(sc.responses), default="Okay.")
    session: AgentSession[None] = AgentSession(
        vad=FakeVAD(), stt=FakeSTT(final_delay=0.2), llm=llm, tts=FakeTTS(), **sc.options
    )
    mic = VoiceAwareMic()
    out = FakeAudioOutput()
    session.input.audio = mic
    session.output.audio = out
    text = FakeTextOutput()
    session.output.transcription = text
    probe = Probe(session, out, text, EventLog(session), loop.time())
    mic_end = loop.time()  # when the scripted microphone has played everything added so far
    interrupt_futs: list[asyncio.Future[None]] = []

    async def bounded(what: str, bound: float, aw: Awaitable[None]) -> None:
        try:
            async with asyncio.timeout(bound):
                await aw
        except TimeoutError:
            note_timeline(probe)
            raise AssertionError(f"deadlock: {what} not done after {bound} virtual s") from None

    async def play() -> None:
        nonlocal mic_end
        await session.start(ToolAgent())
        for step in sc.steps:
            if isinstance(step, Wait):
                await asyncio.sleep(step.seconds)
                continue
            if isinstance(step, UserSays | BargeIn) and (
                isinstance(step, UserSays) or session.running
            ):
                u = step.utterance
                mic.add(u)
                mic_end = max(mic_end, loop.time()) + u.silence_before + u.speech + 0.05
            if not isinstance(step, Say | BargeIn | GenerateReply | Interrupt):
                continue
            if not session.running:  # closed itself after too many model failures
                continue
            if isinstance(step, Say | BargeIn):
                allow = step.allow_interruptions if isinstance(step, Say) else True
                h = session.say(step.text, allow_interruptions=allow)
                probe.said_texts[h.id] = step.text
            elif isinstance(step, GenerateReply):
                session.generate_reply(user_input=step.user_input)
                probe.typed.append(step.user_input)
            elif isinstance(step, Interrupt):
                fut = session.interrupt()
                interrupt_futs.append(fut)
                if step.wait:
                    await bounded("session.interrupt()", INTERRUPT_BOUND, asyncio.shield(fut))

    async def settle() -> None:
        # the microphone plays out, then every turn gets committed (endpointing); then wait
        # until nothing is going on for a second
        wait = mic_end - loop.time() + session.options.max_endpointing_delay + 1.0
        await asyncio.sleep(max(0.0, wait))
        quiet_since: float | None = None
        while True:
            handles = [e.speech_handle for e in probe.log.of("speech_created")]
            quiet = not session.running or (
                session.agent_state == "listening"
                and session.user_state != "speaking"
                and session.current_speech is None
                and all(h.done() for h in handles)
            )
            if not quiet:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = loop.time()
            elif loop.time() - quiet_since >= 1.0:
                return
            await asyncio.sleep(0.1)

    async def close() -> None:
        probe.interrupted_before_close = {
            e.speech_id for e in probe.log.of("speech_created") if e.speech_handle.interrupted
        }
        # (also when the session is closing itself after repeated model failures: aclose()
        # then waits for that close, see test_aclose_waits_for_a_close_in_progress)
        await session.aclose()
        await out.aclose()

    async def watch_barge_ins() -> None:
        # the user's voice stops an interruptible speech (paused or cut) once it has lasted
        # min_interruption_duration: checked against the voice the microphone really plays
        # (not the user state, which the VAD keeps "speaking" through its silence window), in
        # the plain case (no word minimum, and the session hears all of the user's audio)
        opts = session.options
        if opts.min_interruption_words > 0 or (
            opts.discard_audio_if_uninterruptible and may_be_uninterruptible(sc)
        ):
            return
        suspect: str | None = None
        while True:
            await asyncio.sleep(0.05)
            speech = session.current_speech
            voice = mic.voice_duration()
            playing_on = (
                voice > opts.min_interruption_duration + 0.1  # (+ the VAD's start delay)
                and session.agent_state == "speaking"
                and speech is not None
                and speech.allow_interruptions
                and not speech.interrupted
                and not out.paused
            )
            if playing_on and speech is not None and suspect == speech.id:  # 50 ms on
                probe.violations.append(
                    f"at t={probe.t():.3f}: {speech} plays on while the user has been"
                    f" talking for {voice:.2f}s"
                )
                return
            suspect = speech.id if playing_on and speech is not None else None

    watcher = asyncio.create_task(watch_barge_ins())
    try:
        await bounded("the scenario", STEPS_BOUND, play())
        await bounded("settling", SETTLE_BOUND, settle())
    finally:
        watcher.cancel()
        await bounded("aclose()", CLOSE_BOUND, close())
    for _ in range(3):
        await asyncio.sleep(0)
    note_timeline(probe)
    check_invariants(probe, interrupt_futs)
    record_coverage(probe)

    me = asyncio.current_task()
    leaked = [t for t in asyncio.all_tasks() - tasks_before if not t.done() and t is not me]
    assert not leaked, f"tasks left running after aclose(): {leaked}"


def record_coverage(probe: Probe) -> None:
    """What the example exercised (see ``--hypothesis-show-statistics``)."""
    if not currently_in_test_context():
        return
    log = probe.log
    handles = [e.speech_handle for e in log.of("speech_created")]
    voice_turns = [
        e
        for e in log.of("conversation_item_added")
        if isinstance(e.item, ChatMessage)
        and e.item.role == "user"
        and not (e.item.text_content or "").startswith("typed ")
    ]
    depth = max((h.step_index for h in handles), default=0)
    event(f"voice turns: {min(len(voice_turns), 3)}")
    event(f"interrupted speeches: {min(sum(h.interrupted for h in handles), 3)}")
    event(f"tool steps: {min(len(log.of('function_tools_executed')), 2)}")
    event(f"deepest tool reply: {depth}")
    event(f"paused: {probe.pauses > 0}")
    event(f"false interruptions: {min(len(log.of('agent_false_interruption')), 2)}")
    event(f"llm errors: {min(sum(e.source == 'llm' for e in log.of('error')), 4)}")
    event(f"closed by: {log.of('close')[0].reason.value}")
    event(f"speaking entered: {min(log.agent_states().count('speaking'), 3)}")


def note_timeline(probe: Probe) -> None:
    if not currently_in_test_context():  # (a plain test running a scenario)
        return
    note("\n".join(f"{t:8.3f}  {what}" for t, what in probe.timeline))


def check_invariants(probe: Probe, interrupt_futs: list[asyncio.Future[None]]) -> None:
    session, log = probe.session, probe.log

    # the session really closed, once
    assert len(log.of("close")) == 1, "aclose() returned before the session emitted 'close'"

    # agent states: a chain with no repeats; it starts initializing -> listening (audio input
    # attached, so never "idle"), never goes back to initializing and ends listening (close
    # waits for every speech: the last one done puts the agent back to listening). Between
    # listening, thinking and speaking every transition is legitimate, so no order is checked:
    # listening->thinking (a reply is authorized), thinking->speaking (its audio starts),
    # thinking->listening (no audio: interrupted, LLM failure, tool calls only),
    # listening->speaking (say() has no thinking phase; a paused speech resumes),
    # speaking->listening (last speech done; a false-interruption pause), speaking->thinking
    # (the next queued reply or tool step starts). What does hold is checked when a state is
    # entered: see Probe._on_agent_state.
    agent = log.of("agent_state_changed")
    assert agent, "the agent never left 'initializing'"
    assert (agent[0].old_state, agent[0].new_state) == ("initializing", "listening")
    for prev, ev in itertools.pairwise(agent):
        assert ev.old_state == prev.new_state, f"agent state chain broken: {prev} then {ev}"
    for ev in agent:
        assert ev.old_state != ev.new_state, f"agent state repeated: {ev}"
    assert all(ev.new_state in ("listening", "thinking", "speaking") for ev in agent[1:])
    assert agent[-1].new_state == "listening"
    assert session.agent_state == "listening"
    assert not probe.violations, probe.violations

    # user states: a chain with no repeats, through the transitions the code makes
    # (voice starts / ends; away only while quiet; back from away only by speaking)
    user = log.of("user_state_changed")
    allowed = {
        ("listening", "speaking"),
        ("speaking", "listening"),
        ("listening", "away"),
        ("away", "speaking"),
    }
    prev_state = "listening"
    for ev in user:
        assert ev.old_state == prev_state, f"user state chain broken at {ev}"
        assert (ev.old_state, ev.new_state) in allowed, f"unexpected user transition {ev}"
        prev_state = ev.new_state
    assert session.user_state == prev_state

    # every final transcript comes from voice the session noticed: the user state went to
    # "speaking" since the previous final (or still is). Only when all the user's audio was
    # heard: while an uninterruptible speech discards the audio, the STT may get a few frames
    # of voice too short for the VAD. (For turn_detection="stt" too: the user state follows
    # the VAD there as well, see test_stt_turn_detection_notices_the_user_speaking_again.)
    discarding = session.options.discard_audio_if_uninterruptible and any(
        not e.speech_handle.allow_interruptions for e in log.of("speech_created")
    )
    if not discarding:
        state, spoke = "listening", False
        for ev in log.events:
            if ev.type == "user_state_changed":
                state = ev.new_state
                spoke = spoke or state == "speaking"
            elif ev.type == "user_input_transcribed" and ev.is_final and ev.transcript:
                assert spoke, f"final {ev.transcript!r} while the user state never was speaking"
                spoke = state == "speaking"

    # history: exactly the messages announced by conversation_item_added, in order, once
    announced = [
        e.item.id for e in log.of("conversation_item_added") if isinstance(e.item, ChatMessage)
    ]
    in_history = [m.id for m in session.history.messages()]
    assert in_history == announced
    assert len(set(in_history)) == len(in_history), "a message is in history twice"
    users = [m for m in session.history.messages() if m.role == "user"]
    typed = [m for m in users if (m.text_content or "").startswith("typed ")]
    # every typed input is in history, once, in the order it was typed
    assert [m.text_content for m in typed] == probe.typed
    # the spoken turns, in order, are the final transcripts in order — except for a tail
    # still uncommitted at close (no turn lost, none duplicated or reordered)
    spoken = " ".join(m.text_content or "" for m in users if m not in typed).split()
    finals = " ".join(
        e.transcript for e in log.of("user_input_transcribed") if e.is_final and e.transcript
    ).split()
    assert finals[: len(spoken)] == spoken, f"committed turns {spoken} vs finals {finals}"

    # every item is in history once; every assistant message was said by exactly one speech
    ids = [it.id for it in session.history.items]
    assert len(set(ids)) == len(ids), "an item is in history twice"
    handles = {e.speech_id: e.speech_handle for e in log.of("speech_created")}
    said = [
        it.id
        for h in handles.values()
        for it in h.chat_items
        if isinstance(it, ChatMessage) and it.role == "assistant"
    ]
    assistant = [m.id for m in session.history.messages() if m.role == "assistant"]
    assert sorted(said) == sorted(assistant)
    # a message marked interrupted comes from an interrupted speech; what say() put in history
    # is what was heard: the whole text, or (interrupted) a prefix of its words
    for h in handles.values():
        for it in h.chat_items:
            if not (isinstance(it, ChatMessage) and it.role == "assistant"):
                continue
            assert h.interrupted or not it.interrupted, f"{h}: message marked interrupted"
            if h.id in probe.said_texts:
                full, heard = probe.said_texts[h.id].split(), (it.text_content or "").split()
                assert heard == (full[: len(heard)] if it.interrupted else full), (full, heard)
    for h in handles.values():
        if h.id in probe.said_texts and not h.interrupted:  # said to the end: in history
            (msg,) = [it for it in h.chat_items if isinstance(it, ChatMessage)]
            assert msg.text_content == probe.said_texts[h.id] and not msg.interrupted
        if h.id in probe.said_texts and not h.allow_interruptions:  # only aclose() stops it
            assert h.id not in probe.interrupted_before_close, f"{h} was interrupted"
    # the transcript shown for each speech (in order) starts with what the user heard of it
    shown = iter(probe.text.messages)
    for m in session.history.messages():
        if m.role == "assistant":
            heard = (m.text_content or "").split()
            assert any(t.split()[: len(heard)] == heard for t in shown), f"{m} never shown"

    # tools run only below max_tool_steps; a tool reply is at most step max_tool_steps
    max_steps = session.options.max_tool_steps
    for e in log.of("function_tools_executed"):
        assert handles[e.speech_id].step_index < max_steps, f"tools ran at step >= {max_steps}"
    for e in log.of("speech_created"):
        if e.source == "tool_response":
            assert 1 <= e.speech_handle.step_index <= max_steps

    # every speech ended; every interrupt() future resolved
    for e in log.of("speech_created"):
        assert e.speech_handle.done(), f"{e.speech_handle} not done after aclose()"
    assert all(f.done() for f in interrupt_futs)


@settings(
    max_examples=int(os.environ.get("VOICETUI_PROPERTY_EXAMPLES", "50")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(sc=scenarios)
def test_random_interleavings_keep_the_session_consistent(sc: Scenario) -> None:
    # noop_cycles=1: looptime idles 42 loop cycles (by default) before it moves the clock, so
    # that outside I/O can land first; a scenario has none (only fakes; a thread-pool call is
    # waited for by looptime itself), and the idling was 2/3 of this test's time
    loop = looptime.new_event_loop(noop_cycles=1)
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, ctx: reported.append(ctx))
    with real_time_limit(REAL_TIME_LIMIT) as spins:
        try:
            loop.run_until_complete(run_scenario(sc))
        except Livelock:
            pass
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
    assert not spins, f"the event loop stopped yielding (virtual time froze) in:\n{spins[0]}"
    gc.collect()  # so that tasks whose exception nobody retrieved get reported
    # nothing reported to the loop's exception handler: no task died unnoticed (see
    # test_llm_stream_aclose_retrieves_the_error_of_a_failed_attempt)
    assert not reported, [(c.get("message"), c.get("exception")) for c in reported]


# --- regressions: framework bugs the property test found, reduced to minimal cases ----------
@pytest.mark.looptime
async def test_aclose_waits_for_a_close_in_progress() -> None:
    """aclose() used to return at once, before the session was closed, when the session was
    already closing itself (after max_unrecoverable_errors model failures in a row)."""
    llm = FakeLLM([FakeLLMResponse(error=LLMError("boom", recoverable=False)) for _ in range(4)])
    session: AgentSession[None] = AgentSession(llm=llm)
    session.output.transcription = FakeTextOutput()
    closes: list[Any] = []
    session.on("close", closes.append)
    await session.start(Agent(instructions="Be brief."))
    for i in range(4):  # the 4th failure in a row (limit 3) makes the session close itself
        await session.generate_reply(user_input=f"hi {i}")
    assert not session.running
    await session.aclose()
    assert [c.reason for c in closes] == [CloseReason.ERROR]  # (was: no close event yet)


@pytest.mark.looptime
async def test_stt_turn_detection_notices_the_user_speaking_again() -> None:
    """turn_detection="stt" with a VAD: the STT's end of speech used to set the user
    listening, while speaking again only came from the VAD, which never saw the pause end
    (shorter than its 0.3 s silence window): the user talked while user_state said
    listening, and could not interrupt the agent by voice."""
    session: AgentSession[None] = AgentSession(
        vad=FakeVAD(),
        stt=FakeSTT(final_delay=0.2),
        llm=FakeLLM(default="Okay."),
        tts=FakeTTS(),
        turn_detection="stt",
    )
    # voice 0.5–1.5 s, the STT's final + end of speech at 1.71; voice again 1.75–3.75 s
    session.input.audio = FakeAudioInput(
        [Utterance(1.0, 0.5, "hello there"), Utterance(2.0, 0.25, "how are you")]
    )
    out = FakeAudioOutput()
    session.output.audio = out
    await session.start(Agent(instructions="Be brief."))
    await asyncio.sleep(2.5)
    assert session.user_state == "speaking"  # (was: "listening", until 3.75 s)
    await session.aclose()
    await out.aclose()


@pytest.mark.looptime
async def test_llm_stream_aclose_retrieves_the_error_of_a_failed_attempt() -> None:
    """LLMStream.aclose() (cancel_and_wait) used not to retrieve the exception of an attempt
    that had already failed: asyncio logged 'Task exception was never retrieved' (in a session:
    for every reply interrupted after its LLM call failed)."""
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, ctx: reported.append(ctx))
    try:
        llm = FakeLLM([FakeLLMResponse(error=LLMError("boom", recoverable=False))])
        stream = llm.chat(chat_ctx=ChatContext.empty())
        await asyncio.sleep(0.1)  # the attempt fails before anyone reads the stream
        await stream.aclose()
        del stream
        gc.collect()
    finally:
        loop.set_exception_handler(previous)
    assert not reported, [ctx["message"] for ctx in reported]


# found with --hypothesis-seed=31 (the 381st example); freezes the loop every time
FROZEN_LOOP_SCENARIO = Scenario(
    options={
        "allow_interruptions": True,
        "discard_audio_if_uninterruptible": True,
        "min_interruption_duration": 0.1,
        "min_interruption_words": 0,
        "false_interruption_timeout": None,
        "resume_false_interruption": False,
        "preemptive_generation": False,
        "min_endpointing_delay": 0.6,
        "max_endpointing_delay": 1.1,
        "max_tool_steps": 2,
        "turn_detection": "vad",
        "user_away_timeout": None,
    },
    responses=[
        FakeLLMResponse(ttft=0.5, error=LLMError("boom", recoverable=False)),
        FakeLLMResponse(
            tool_calls=[FakeToolCall("lookup", {"delay": 1.0, "outcome": "none"})], ttft=0.6
        ),
        FakeLLMResponse(content="weather no no please wait", ttft=0.1, tokens_per_second=5.0),
    ],
    steps=[
        UserSays(Utterance(0.9, 1.2, "wait please hello weather no")),
        BargeIn("please please please no hello wait", Utterance(0.1, 0.8, "yes hello stop yes")),
        GenerateReply("typed hello"),
        GenerateReply("typed stop now now yes stop"),
    ],
)


def test_interrupting_a_reply_while_its_last_sentence_is_synthesized() -> None:
    """The session-level case of the TaskSet.aclose() livelock: at 3.6 s the user's turn
    interrupts the reply whose LLM stream (5 words/s) is just ending; the TTS stream adapter is
    cancelled in the loop iteration in which its last sentence's synthesis finished, and its
    ``finally: await tasks.aclose()`` then spins forever, freezing the whole session."""
    loop = looptime.new_event_loop()
    failure: BaseException | None = None
    with real_time_limit(3.0) as spins:
        try:
            loop.run_until_complete(run_scenario(FROZEN_LOOP_SCENARIO))
        except (Livelock, AssertionError) as e:  # (whatever the interrupted spin broke)
            failure = e
        finally:
            loop.close()
    assert not spins, f"the event loop stopped yielding in:\n{spins[0]}"
    if failure is not None:
        raise failure


def test_taskset_aclose_reaps_a_task_that_just_finished() -> None:
    # in a subprocess: the bug freezes its event loop for good. A watchdog thread in it (the
    # loop spins, the thread still runs) tells a spin from a slow start on a loaded machine.
    code = """
import asyncio, os, threading
from voicetui.agents.utils.aio import TaskSet

async def main() -> None:
    tasks = TaskSet("repro")

    async def noop() -> None:
        pass

    tasks.create(noop())
    await asyncio.sleep(0)  # noop finishes in this iteration, TaskSet._on_done runs next
    watchdog = threading.Timer(10, os._exit, (3,))
    watchdog.start()
    await tasks.aclose()
    watchdog.cancel()

asyncio.run(main())
"""
    done = subprocess.run([sys.executable, "-c", code], timeout=300)
    if done.returncode == 3:
        pytest.fail("TaskSet.aclose() was still spinning after 10 s")
    assert done.returncode == 0
