"""The bridge alone: ordering, coalescing, bounded queues, throttling, command failures."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from textual.message import Message

from tests import fake_runtime as fr
from tests.fake_runtime import FakeRuntime
from voicetui.runtime.api import CommandError
from voicetui.tui import messages as m
from voicetui.tui.bridge import RuntimeBridge


class Target:
    """Stands in for the app: records posted messages and timers."""

    def __init__(self) -> None:
        self.posted: list[Message] = []
        self.timers: list[tuple[float, Callable[[], None]]] = []
        self.lock = threading.Lock()

    def post_message(self, message: Message) -> bool:
        with self.lock:
            self.posted.append(message)
        return True

    def set_timer(self, delay: float, callback: Callable[[], None]) -> None:
        self.timers.append((delay, callback))

    def take(self) -> list[Message]:
        """What was posted, batches unpacked."""
        with self.lock:
            out, self.posted = self.posted, []
        flat: list[Message] = []
        for msg in out:
            flat.extend(msg.messages if isinstance(msg, m.RuntimeBatch) else [msg])
        return flat


def make(
    min_interval: float = 0.0, **kw: Any
) -> tuple[RuntimeBridge, Target, FakeRuntime, list[float]]:
    rt = FakeRuntime()
    target = Target()
    now = [100.0]
    bridge = RuntimeBridge(
        rt,
        target,  # type: ignore[arg-type]
        min_interval=min_interval,
        clock=lambda: now[0],
        **kw,
    )
    bridge.attach()
    return bridge, target, rt, now


def test_one_wakeup_then_everything_in_order() -> None:
    bridge, target, rt, _ = make()
    rt.emit_threaded(fr.agent_state("thinking"), fr.user_message("hi"), fr.agent_state("speaking"))
    posted = target.take()
    assert [type(p) for p in posted] == [m.BridgeWakeup]
    bridge.on_wakeup()
    posted = target.take()
    assert [type(p) for p in posted] == [
        m.AgentStateUpdate,
        m.ConversationItem,
        m.AgentStateUpdate,
    ]
    assert [p.state for p in posted if isinstance(p, m.AgentStateUpdate)] == [
        "thinking",
        "speaking",
    ]


def test_levels_keep_only_the_latest() -> None:
    bridge, target, rt, _ = make()
    rt.emit_threaded(*[fr.levels(-60 + i * 0.01) for i in range(2000)])
    assert len(target.take()) == 1  # one wakeup for 2000 events
    bridge.flush()
    posted = target.take()
    assert len(posted) == 1 and isinstance(posted[0], m.LevelsUpdate)
    assert abs(posted[0].levels.input_dbfs - (-60 + 1999 * 0.01)) < 1e-9


def test_interim_transcripts_merge_but_finals_keep_their_place() -> None:
    bridge, target, rt, _ = make()
    rt.emit(
        fr.transcript("a"),
        fr.transcript("a b"),
        fr.transcript("a b c", final=True),
        fr.transcript("d"),
        fr.transcript("d e"),
    )
    bridge.flush()
    posted = [p for p in target.take() if isinstance(p, m.UserTranscript)]
    assert [(p.event.transcript, p.event.is_final) for p in posted] == [
        ("a b c", True),
        ("d e", False),
    ]


def test_logs_are_bounded_and_dropped_counted() -> None:
    bridge, target, rt, _ = make(max_pending_logs=100)
    rt.emit(*[fr.log(logging.INFO, f"line {i}") for i in range(5000)])
    bridge.flush()
    batches = [p for p in target.take() if isinstance(p, m.LogBatch)]
    assert len(batches) == 1
    assert len(batches[0].records) == 100 and batches[0].dropped == 4900
    assert batches[0].records[0].message == "line 0"


def test_flushes_at_most_every_interval() -> None:
    bridge, target, rt, now = make(min_interval=0.05)
    rt.emit(fr.agent_state("thinking"))
    bridge.on_wakeup()  # first flush: at once
    assert any(isinstance(p, m.AgentStateUpdate) for p in target.take())
    rt.emit(fr.agent_state("speaking"))
    now[0] += 0.01
    bridge.on_wakeup()  # too soon: a timer for the rest of the interval
    assert not any(isinstance(p, m.AgentStateUpdate) for p in target.take())
    assert len(target.timers) == 1 and abs(target.timers[0][0] - 0.04) < 1e-9
    bridge.on_wakeup()  # no second timer
    assert len(target.timers) == 1
    target.timers[0][1]()
    assert any(isinstance(p, m.AgentStateUpdate) for p in target.take())


def test_the_runtime_thread_never_waits() -> None:
    """The callback only appends under a short lock: 50k events return while nobody drains
    them (nothing reaches the UI side until it flushes), and a broken event does not raise into
    the runtime. (How fast: scripts/bench_conversation.py; tests assert no wall-clock speed.)"""
    bridge, target, rt, _ = make()

    class Broken:
        type = "agent_state_changed"  # no new_state

    rt.emit(Broken())
    rt.emit(*[fr.levels() for _ in range(25_000)], *[fr.transcript("x") for _ in range(25_000)])
    # the runtime thread handed over at most a wake-up, none of the events themselves
    assert all(isinstance(p, m.BridgeWakeup) for p in target.take())
    bridge.flush()
    kinds = [type(p) for p in target.take()]
    assert kinds.count(m.UserTranscript) == 1 and kinds.count(m.LevelsUpdate) == 1


def test_unknown_events_are_ignored() -> None:
    bridge, target, rt, _ = make()

    class Other:
        type = "speech_created"

    rt.emit(Other())
    assert target.take() == []


def test_commands_failures_become_messages() -> None:
    bridge, target, rt, _ = make()
    rt.fail["interrupt"] = RuntimeError("nothing to interrupt")
    bridge.command("interrupt", rt.interrupt)
    (msg,) = target.take()
    assert isinstance(msg, m.CommandFailed)
    assert (msg.label, msg.error) == ("interrupt", "interrupt failed: nothing to interrupt")

    def boom() -> Future[None]:
        raise ValueError()

    bridge.command("boom", boom)
    (msg,) = target.take()
    assert isinstance(msg, m.CommandFailed) and msg.error == "boom failed: ValueError"

    # the runtime's own failure is one sentence already, and shown by its notice: not again
    rt.fail["interrupt"] = CommandError("interrupting failed: no session", announced=True)
    bridge.command("interrupt", rt.interrupt)
    assert target.take() == []
    rt.fail["interrupt"] = CommandError("interrupting failed: the runtime is stopping")
    bridge.command("interrupt", rt.interrupt)
    (msg,) = target.take()
    assert msg.error == "interrupting failed: the runtime is stopping"  # no second prefix

    got: list[str] = []
    bridge.command("export", lambda: rt.export_transcript("/x"), got.append)
    (msg,) = target.take()
    assert isinstance(msg, m.CommandDone)
    msg.then()
    assert got == ["/x"]

    errors: list[str] = []
    rt.fail["switch_mode"] = ValueError("no room")
    bridge.command("room", lambda: rt.switch_mode("room"), on_error=errors.append)
    (msg,) = target.take()
    assert isinstance(msg, m.CommandDone)
    msg.then()
    assert errors == ["no room"]


def test_a_command_finishing_later_on_another_thread() -> None:
    bridge, target, rt, _ = make()
    fut: Future[str] = Future()
    got: list[str] = []
    bridge.command("later", lambda: fut, got.append)
    assert target.take() == []
    threading.Thread(target=fut.set_result, args=("done",)).start()
    for _ in range(100):
        if target.posted:
            break
        time.sleep(0.01)
    (msg,) = target.take()
    assert isinstance(msg, m.CommandDone)
    msg.then()
    assert got == ["done"]


def test_detach_unsubscribes() -> None:
    bridge, target, rt, _ = make()
    assert rt.subscriber_count == 1
    bridge.detach()
    bridge.detach()
    assert rt.subscriber_count == 0
