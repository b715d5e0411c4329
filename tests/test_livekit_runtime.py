"""``LiveKitAgentRuntime`` against a stand-in agent process that speaks LiveKit's console
protocol (tests/fixtures/livekit_agents/fake_console_agent.py): a text turn with a tool call,
playout acknowledgement, unknown messages, a crash and the restart it offers, recording and
`voicetui show`, no orphan process. (The real livekit-agents package: test_livekit_agents.py.)"""

from __future__ import annotations

import io
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.virtual_audio import VirtualAudio, virtual_audio_fixture  # noqa: F401
from voicetui.agents.llm import ChatMessage
from voicetui.events import RuntimeEvent
from voicetui.runtime.api import CommandError
from voicetui.runtime.livekit import LiveKitAgentRuntime

FAKE_AGENT = Path(__file__).parent / "fixtures" / "livekit_agents" / "fake_console_agent.py"


class Events:
    def __init__(self) -> None:
        self.items: list[RuntimeEvent] = []
        self._cond = threading.Condition()

    def __call__(self, ev: RuntimeEvent) -> None:
        with self._cond:
            self.items.append(ev)
            self._cond.notify_all()

    def of(self, type_: str) -> list[Any]:
        with self._cond:
            return [e for e in self.items if e.type == type_]

    def wait(self, ok: Callable[[], bool], within: float = 20.0) -> None:
        deadline = time.monotonic() + within
        with self._cond:
            while not ok():
                left = deadline - time.monotonic()
                assert left > 0, f"timed out; events: {[e.type for e in self.items]}"
                self._cond.wait(min(left, 0.1))

    def logs(self) -> str:
        return "\n".join(e.message for e in self.of("log"))


@pytest.fixture
def make_runtime() -> Iterator[Callable[..., tuple[LiveKitAgentRuntime, Events]]]:
    made: list[LiveKitAgentRuntime] = []

    def make(**kw: Any) -> tuple[LiveKitAgentRuntime, Events]:
        rt = LiveKitAgentRuntime(
            FAKE_AGENT, launcher=[sys.executable, str(FAKE_AGENT)], mode="text", **kw
        )
        events = Events()
        rt.subscribe(events)
        made.append(rt)
        return rt, events

    yield make
    for rt in made:
        rt.stop().result(20)
        rt.join(10)


def messages(events: Events, role: str) -> list[str]:
    return [
        " ".join(e.item.content)
        for e in events.of("conversation_item_added")
        if isinstance(e.item, ChatMessage) and e.item.role == role
    ]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_typed_turn_shows_the_tool_call_and_the_reply(
    make_runtime: Callable[..., tuple[LiveKitAgentRuntime, Events]], tmp_path: Path
) -> None:
    rt, events = make_runtime()
    rt.start().result(30)
    assert rt.mode == "text" and events.of("mode_changed")[0].description == "TEXT"
    events.wait(lambda: "0.0-fake" in events.of("status")[-1].models)
    rt.send_text("weather").result(10)
    events.wait(lambda: messages(events, "assistant") == ["answer to weather"])
    assert messages(events, "user") == ["weather"]
    (started,) = events.of("function_tools_started")
    (executed,) = events.of("function_tools_executed")
    assert started.function_calls[0].name == "lookup"
    (ex,) = executed.executions
    assert ex.output.output == "found it" and ex.duration >= 0.04
    events.wait(lambda: len(events.of("agent_state_changed")) == 4)
    states = [e.new_state for e in events.of("agent_state_changed")]
    assert states == ["listening", "thinking", "speaking", "listening"]
    reply = events.of("conversation_item_added")[-1].item
    assert reply.metrics.llm_node_ttft == pytest.approx(0.25)
    path = rt.export_transcript(str(tmp_path / "t.md")).result(10)
    text = Path(path).read_text()
    assert "**User**" in text and "answer to weather" in text and 'lookup(q="weather")' in text


def test_audio_sent_in_text_mode_is_acknowledged_as_played(
    make_runtime: Callable[..., tuple[LiveKitAgentRuntime, Events]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    rt, events = make_runtime()
    with caplog.at_level("INFO", logger="livekit.agent"):
        rt.start().result(30)
        # the stand-in waits for audio_playback_finished before it takes the next request
        rt.send_text("speak").result(10)
        rt.send_text("weather").result(10)
        events.wait(lambda: messages(events, "assistant") == ["answer to weather"])
    agent_lines = [r.getMessage() for r in caplog.records if r.name == "livekit.agent"]
    assert "INFO fake agent playout finished" in agent_lines
    # text mode switched the agent's audio off (UpdateIO)
    assert "INFO fake agent audio False" in agent_lines


def test_unknown_messages_are_logged_once_and_never_crash(
    make_runtime: Callable[..., tuple[LiveKitAgentRuntime, Events]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    rt, events = make_runtime()
    rt.start().result(30)
    with caplog.at_level("INFO", logger="voicetui.livekit"):
        rt.send_text("unknown").result(10)
        rt.send_text("unknown").result(10)
        rt.send_text("after").result(10)
        events.wait(lambda: messages(events, "assistant") == ["answer to after"])
    unknown = [
        r for r in caplog.records if "unknown message" in r.message or "does not know" in r.message
    ]
    assert len(unknown) == 2  # the unknown message kind, the empty event: once each
    assert not events.of("error")


def test_a_crash_is_reported_with_its_last_lines_and_typing_restarts_the_agent(
    make_runtime: Callable[..., tuple[LiveKitAgentRuntime, Events]],
) -> None:
    rt, events = make_runtime()
    rt.start().result(30)
    first = rt.agent_process
    assert first is not None and first.pid is not None
    rt.send_text("crash").result(10)
    events.wait(lambda: bool(events.of("error")))
    (err,) = events.of("error")
    assert "exited with code 5" in err.message and "crashing as asked" in err.message
    assert not err.recoverable
    events.wait(lambda: any("start it again" in n.message for n in events.of("notice")))
    rt.send_text("again").result(30)
    events.wait(lambda: messages(events, "assistant") == ["answer to again"])
    assert rt.agent_process is not first


def test_an_agent_that_fails_at_start_is_reported_and_the_app_stays_up(
    make_runtime: Callable[..., tuple[LiveKitAgentRuntime, Events]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAKE_AGENT_CRASH", "1")
    rt, events = make_runtime()
    rt.start().result(30)  # the session runtime is up; the agent is not
    (err,) = events.of("error")
    assert "did not start" in err.message and "broken on purpose" in err.message
    monkeypatch.delenv("FAKE_AGENT_CRASH")
    rt.send_text("fixed").result(30)
    events.wait(lambda: messages(events, "assistant") == ["answer to fixed"])


def test_an_entrypoint_that_raises_is_reported_without_waiting_for_a_connection(
    make_runtime: Callable[..., tuple[LiveKitAgentRuntime, Events]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAKE_AGENT_CRASH", "job")
    rt, events = make_runtime()
    t0 = time.monotonic()
    rt.start().result(30)
    assert time.monotonic() - t0 < 10
    (err,) = events.of("error")
    assert "entrypoint raised" in err.message and "the entrypoint is broken" in err.message
    assert rt.agent_process is not None and rt.agent_process.returncode is not None  # stopped


def test_what_the_protocol_cannot_do_fails_with_a_reason(
    make_runtime: Callable[..., tuple[LiveKitAgentRuntime, Events]],
) -> None:
    rt, events = make_runtime()
    rt.start().result(30)
    for command in (
        lambda: rt.say("hi"),
        rt.interrupt,
        rt.push_to_talk,
        lambda: rt.set_break_on_tool_call(True),
        lambda: rt.rerun_tool("lookup", "{}"),
    ):
        with pytest.raises(CommandError, match="not available for a LiveKit agent: "):
            command().result(5)
    with pytest.raises(CommandError, match="console mode"):
        rt.switch_mode("room").result(5)
    assert {"toggle_break", "rerun_tool", "interrupt", "push_to_talk"} <= rt.unsupported.keys()


def test_stopping_the_runtime_stops_the_agent(
    make_runtime: Callable[..., tuple[LiveKitAgentRuntime, Events]],
) -> None:
    rt, _ = make_runtime()
    rt.start().result(30)
    assert rt.agent_process is not None and rt.agent_process.pid is not None
    pid = rt.agent_process.pid
    assert alive(pid)
    rt.stop().result(20)
    assert not alive(pid)


def test_a_recording_opens_with_show(
    make_runtime: Callable[..., tuple[LiveKitAgentRuntime, Events]], tmp_path: Path
) -> None:
    from voicetui.cli import main

    rt, events = make_runtime(record_dir=str(tmp_path))
    rt.start().result(30)
    rt.send_text("weather").result(10)
    events.wait(lambda: messages(events, "assistant") == ["answer to weather"])
    rt.stop_recording().result(20)
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    out = io.StringIO()
    sys_stdout = sys.stdout
    sys.stdout = out
    try:
        assert main(["show", str(folder), "--text"]) == 0
    finally:
        sys.stdout = sys_stdout
    shown = out.getvalue()
    assert "weather" in shown and "answer to weather" in shown and "lookup" in shown


def test_the_command_runs_the_agent_headless(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from voicetui.cli import main

    monkeypatch.setenv("FAKE_AGENT_PYTHON", sys.executable)
    monkeypatch.setattr(sys, "stdin", io.StringIO("weather\n"))
    fake_python = FAKE_AGENT.parent / "fake_python"
    argv = ["livekit-agent", str(FAKE_AGENT), "--python", str(fake_python), "--mode", "text"]
    code = main([*argv, "--headless", "--", "--extra", "arg"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "answer to weather" in out.out and "lookup" in out.out


def test_the_command_says_how_it_is_used(capsys: pytest.CaptureFixture[str]) -> None:
    from voicetui.cli import main

    assert main(["livekit-agent", "--help"]) == 0
    assert "--python" in capsys.readouterr().out


def test_an_agent_does_not_outlive_a_killed_voicetui(tmp_path: Path) -> None:
    """voicetui SIGKILLed (no clean stop): its agent gets SIGTERM (Linux's parent-death signal)."""
    import signal
    import subprocess

    if sys.platform != "linux":
        pytest.skip("the parent-death signal is Linux's")
    pid_file = tmp_path / "agent.pid"
    script = f"""
import sys, time
sys.path.insert(0, {str(Path(__file__).parent.parent)!r})
from voicetui.runtime.livekit import LiveKitAgentRuntime
rt = LiveKitAgentRuntime({str(FAKE_AGENT)!r}, launcher=[sys.executable, {str(FAKE_AGENT)!r}], mode="text")
rt.start().result(30)
open({str(pid_file)!r}, "w").write(str(rt.agent_process.pid))
time.sleep(60)
"""
    parent = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 30
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline and parent.poll() is None
            time.sleep(0.05)
        agent_pid = int(pid_file.read_text())
        assert alive(agent_pid)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
    deadline = time.monotonic() + 10
    while alive(agent_pid):
        assert time.monotonic() < deadline, "the agent outlived voicetui"
        time.sleep(0.05)


def test_the_agent_output_goes_to_the_logs_tab(
    make_runtime: Callable[..., tuple[LiveKitAgentRuntime, Events]],
) -> None:
    from voicetui.runtime.log_capture import LogCapture

    capture = LogCapture("info")
    capture.install()
    try:
        rt, events = make_runtime(log_capture=capture)
        rt.start().result(30)
        events.wait(
            lambda: any(
                e.logger == "livekit.agent" and "fake agent starting" in e.message
                for e in events.of("log")
            )
        )
    finally:
        capture.uninstall()


def test_switching_to_audio_and_back(
    make_runtime: Callable[..., tuple[LiveKitAgentRuntime, Events]],
    virtual_audio: VirtualAudio,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rt, events = make_runtime()
    with caplog.at_level("INFO", logger="livekit.agent"):
        rt.start().result(30)
        rt.switch_mode("local").result(30)
        assert rt.mode == "local"
        assert events.of("mode_changed")[-1].description.startswith("LOCAL mic: ")
        # the microphone's audio reaches the agent (it says so after 10 frames)
        events.wait(lambda: bool(events.of("user_input_transcribed")))
        events.wait(lambda: bool(events.of("levels")))
        rt.switch_mode("text").result(30)
    assert rt.mode == "text" and events.of("mode_changed")[-1].description == "TEXT"
    agent_lines = [r.getMessage() for r in caplog.records if r.name == "livekit.agent"]
    audio = [line for line in agent_lines if "fake agent audio" in line]
    assert audio == [
        "INFO fake agent audio False",
        "INFO fake agent audio True",
        "INFO fake agent audio False",
    ]
