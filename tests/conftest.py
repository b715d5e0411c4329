from __future__ import annotations

import asyncio
import typing
from collections.abc import AsyncIterator, Callable
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


PULSEAUDIO_GROUP = "pulseaudio"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """How pytest-xdist shares the tests out (``./scripts/test`` runs ``-n 2 --dist loadgroup``):
    a test file goes to one worker whole (its module-scoped models load once), and every test on
    the virtual audio devices (real PulseAudio, real time) runs on one worker, one at a time,
    against that worker's one daemon. An explicit ``xdist_group`` mark wins. Without xdist the
    marks do nothing."""
    for item in items:
        if item.get_closest_marker("xdist_group") is not None:
            continue
        fixtures = getattr(item, "fixturenames", ())
        group = PULSEAUDIO_GROUP if "virtual_audio" in fixtures else item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group(group))


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
