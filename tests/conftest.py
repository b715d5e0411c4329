from __future__ import annotations

import asyncio
import contextlib
import os
import typing
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from voicetui.agents import AgentSession
from voicetui.agents.voice.events import EventTypes

ALL_EVENTS: tuple[EventTypes, ...] = typing.get_args(EventTypes)


class EventLog:
    """Records every session event in order."""

    def __init__(self, session: AgentSession[Any]) -> None:
        self.events: list[Any] = []
        for name in ALL_EVENTS:
            session.on(name, self.events.append)

    def of(self, type_: str) -> list[Any]:
        return [e for e in self.events if e.type == type_]

    def types(self, *, exclude: tuple[str, ...] = ("metrics_collected",)) -> list[str]:
        return [e.type for e in self.events if e.type not in exclude]

    def agent_states(self) -> list[str]:
        return [e.new_state for e in self.of("agent_state_changed")]


REALTIME_GROUP = "realtime"
"""The xdist group of the tests that play, record or pace audio in real time: every test on the
virtual audio devices (real PulseAudio), and the files marked with it (LiveKit's real-time
audio sources)."""


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """How pytest-xdist shares the tests out (``./scripts/test`` runs ``-n 2 --dist loadgroup``):
    a test file goes to one worker whole (its module-scoped models load once), and the real-time
    tests run on one worker, one at a time (against that worker's one PulseAudio daemon). An
    explicit ``xdist_group`` mark wins. Without xdist the marks only pick the real-time tests."""
    for item in items:
        if item.get_closest_marker("xdist_group") is not None:
            continue
        fixtures = getattr(item, "fixturenames", ())
        group = REALTIME_GROUP if "virtual_audio" in fixtures else item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group(group))


REALTIME_NICE = -10
"""A process running the real-time tests asks for this much more CPU priority: under xdist the
other worker (or any other load: CI shares 2 cores) starved their audio threads into underruns,
gaps and lost audio that the tests then saw as wrong durations. It holds for every thread the
process has and the ones and the processes it starts later (inherited); without the privilege to
raise it (not root, no CAP_SYS_NICE) the tests run as before. VOICETUI_TEST_REALTIME_NICE=0
turns it off."""


def _raise_priority() -> None:
    nice = int(os.environ.get("VOICETUI_TEST_REALTIME_NICE", REALTIME_NICE))
    # (Linux keeps a nice value per thread: e.g. a pool's thread that will open a stream)
    tasks = Path("/proc/self/task")
    tids = [int(t.name) for t in tasks.iterdir()] if tasks.is_dir() else [0]
    for tid in tids:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, tid, min(nice, os.getpriority(os.PRIO_PROCESS, tid)))


@pytest.fixture(autouse=True)
def realtime_priority(request: pytest.FixtureRequest) -> None:
    mark = request.node.get_closest_marker("xdist_group")
    if mark is not None and mark.args and mark.args[0] == REALTIME_GROUP:
        _raise_priority()


@pytest.fixture(autouse=True)
def lasting_notifications(monkeypatch: pytest.MonkeyPatch) -> None:
    """Textual's notifications (toasts) expire after a few seconds of real time, and the tests
    that read ``app._notifications`` found them gone when a loaded machine (xdist's other
    worker, CI's shared cores) made the app slower to get there: in tests they last."""
    from textual.notifications import Notification

    monkeypatch.setattr(Notification, "time_left", property(lambda self: 3600.0))
    monkeypatch.setattr(Notification, "has_expired", property(lambda self: False))


@pytest.fixture
def make_session() -> Callable[..., AgentSession[Any]]:
    return lambda **kw: AgentSession(**kw)


@pytest.fixture
async def no_leaks() -> AsyncIterator[None]:
    """Fails the test if it leaves tasks running on the loop."""
    before = asyncio.all_tasks()
    yield
    await asyncio.sleep(0)
    leaked = [
        t for t in asyncio.all_tasks() - before if not t.done() and t is not asyncio.current_task()
    ]
    assert not leaked, f"tasks left running: {leaked}"


@pytest.fixture(autouse=True)
def no_portaudio_stream_left_open() -> typing.Iterator[None]:
    """Fails a test that leaves a PortAudio stream open: its callbacks would run on into later
    tests (and once crashed the suite when the stream object was collected)."""
    import sys

    yield
    devices = sys.modules.get("voicetui.io.local.devices")
    if devices is None:
        return
    left = devices.open_streams()
    if left:
        for stream in left:
            devices.close_stream(stream)
        pytest.fail(f"{len(left)} PortAudio stream(s) left open: {left}")
