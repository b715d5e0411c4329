"""The ``voicetui`` command: parsing, ``--version``, ``config``, ``--list-devices``, ``--agent``
loading errors, the first-run requirements check, and handing over to the TUI."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
import textwrap
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from tests.virtual_audio import VirtualAudio, virtual_audio_fixture  # noqa: F401
from voicetui import __version__
from voicetui.agent_loader import AgentLoadError, load_agent, make_agent, split_spec
from voicetui.agents import Agent
from voicetui.cli import build_parser, flags_from_args, main


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No user config file, no provider keys from the machine."""
    monkeypatch.setenv("VOICETUI_CONFIG", str(tmp_path / "no-config.toml"))
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "LIVEKIT_URL", "LIVEKIT_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name in ("VOICETUI_MODE", "VOICETUI_AGENT", "VOICETUI_LLM", "VOICETUI_STT"):
        monkeypatch.delenv(name, raising=False)


NO_MODELS = ["--stt", "none", "--llm", "none", "--tts", "none", "--vad", "none"]


# --- parsing ----------------------------------------------------------------------------------
def test_flags_map_to_settings_keys() -> None:
    args = build_parser().parse_args(
        ["--llm", "openai", "--llm-model", "gpt-4o", "--room", "r1", "--url", "wss://x",
         "--input-device", "3", "--min-endpointing-delay", "0.4", "--record", "/tmp/rec",
         "--no-echo-cancellation", "--preemptive-generation", "--theme", "light"]
    )  # fmt: skip
    assert flags_from_args(args) == {
        "models.llm": "openai",
        "models.llm_model": "gpt-4o",
        "room.name": "r1",
        "room.url": "wss://x",
        "input_device": "3",
        "turn.min_endpointing_delay": 0.4,
        "record_dir": "/tmp/rec",
        "echo_cancellation": False,
        "turn.preemptive_generation": True,
        "theme": "light",
    }
    assert flags_from_args(build_parser().parse_args([])) == {}  # absent flags stay absent


def test_input_wav_implies_wav_mode() -> None:
    args = build_parser().parse_args(["--input-wav", "q.wav"])
    assert flags_from_args(args) == {"input_wav": "q.wav", "mode": "wav"}
    args = build_parser().parse_args(["--input-wav", "q.wav", "--mode", "local"])
    assert flags_from_args(args)["mode"] == "local"


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"voicetui {__version__}"
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "--headless" in out and "--list-devices" in out and "config" in out


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--mode", "moon"]) == 2
    assert "invalid choice: 'moon'" in capsys.readouterr().err
    assert main(["--json", *NO_MODELS]) == 2
    assert "--json needs --headless" in capsys.readouterr().err


def test_python_dash_m_works() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "voicetui", "--version"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0 and out.stdout.strip() == f"voicetui {__version__}"


# --- config -----------------------------------------------------------------------------------
def test_config_prints_effective_settings_masked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text('theme = "light"\n[room]\napi_secret = "very-secret-indeed"\n')
    monkeypatch.setenv("VOICETUI_CONFIG", str(config))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-abcdefghijklmnop")
    assert main(["--llm", "openai", "config", "--mode", "text"]) == 0
    out = capsys.readouterr().out
    assert "very-secret" not in out and "sk-abcdefghijklmnop" not in out
    assert '"sk-a****"  # env OPENAI_API_KEY' in out
    assert '"very****"  # config file config.toml' in out
    assert '"light"  # config file config.toml' in out
    lines = {line.split("=")[0].strip(): line for line in out.splitlines()[1:]}
    assert lines["models.llm"].endswith("# flag") and lines["mode"].endswith("# flag")
    assert main(["config", "--path"]) == 0
    assert capsys.readouterr().out.strip() == str(config)


def test_invalid_config_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text('mode = "loud"\n')
    assert main(["config", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("voicetui: invalid settings:") and "mode:" in err
    assert "Traceback" not in err


# --- devices ----------------------------------------------------------------------------------
def test_list_devices_on_virtual_audio(
    virtual_audio: VirtualAudio, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--list-devices"]) == 0
    out = capsys.readouterr().out
    assert "default" in out and "in," in out and "Hz" in out


def test_list_devices_without_portaudio(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import voicetui.io.local as local

    def broken() -> str:
        raise local.AudioDeviceError("PortAudio is not available: libportaudio.so.2 missing")

    monkeypatch.setattr(local, "format_devices", broken)
    assert main(["--list-devices"]) == 1
    assert "PortAudio is not available" in capsys.readouterr().err


# --- agents -----------------------------------------------------------------------------------
AGENTS = """
from voicetui.agents import Agent

class First(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="first")

class Second(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="second")

class NeedsArgs(Agent):
    def __init__(self, name: str) -> None:
        super().__init__(instructions=name)

def make_agent():
    return Second()

async def make_async():
    return First()

def not_an_agent():
    return 42

NUMBER = 7
"""


def agent_file(tmp_path: Path, text: str = AGENTS, name: str = "my_agent.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def build(spec: str) -> Agent:
    return asyncio.run(make_agent(load_agent(spec)))


def test_split_spec() -> None:
    assert split_spec("a/b.py:Name") == ("a/b.py", "Name")
    assert split_spec("a/b.py") == ("a/b.py", None)
    assert split_spec("C:\\agents\\b.py") == ("C:\\agents\\b.py", None)
    assert split_spec("C:\\agents\\b.py:Name") == ("C:\\agents\\b.py", "Name")


def test_load_agents(tmp_path: Path) -> None:
    path = agent_file(tmp_path)
    assert build(str(path)).instructions == "first"  # the first Agent subclass
    assert build(f"{path}:Second").instructions == "second"
    assert build(f"{path}:make_agent").instructions == "second"
    assert build(f"{path}:make_async").instructions == "first"
    assert type(build("voicetui.default_agent:DefaultAgent")).__name__ == "DefaultAgent"


@pytest.mark.parametrize(
    ("suffix", "message"),
    [
        (":Missing", "has no 'Missing'; Agent subclasses there: First, Second, NeedsArgs"),
        (":NUMBER", "is a int; expected an Agent subclass or a function"),
    ],
)
def test_agent_spec_errors(tmp_path: Path, suffix: str, message: str) -> None:
    path = agent_file(tmp_path)
    with pytest.raises(AgentLoadError, match=message):
        load_agent(f"{path}{suffix}")


def test_agent_factory_errors(tmp_path: Path) -> None:
    path = agent_file(tmp_path)
    with pytest.raises(AgentLoadError, match=r"NeedsArgs\(\) failed: .*must take no arguments"):
        build(f"{path}:NeedsArgs")
    with pytest.raises(AgentLoadError, match=r"not_an_agent\(\) returned int, not an Agent"):
        build(f"{path}:not_an_agent")


def test_agent_file_errors(tmp_path: Path) -> None:
    with pytest.raises(AgentLoadError, match="agent file not found"):
        load_agent(str(tmp_path / "nope.py"))
    with pytest.raises(AgentLoadError, match="is a directory"):
        load_agent(str(tmp_path))
    broken = agent_file(tmp_path, "x = (\n", "broken.py")
    with pytest.raises(
        AgentLoadError, match=r"importing .*broken.py failed at line 1: SyntaxError"
    ):
        load_agent(str(broken))
    raising = agent_file(tmp_path, "import os\nraise RuntimeError('no config')\n", "raising.py")
    with pytest.raises(AgentLoadError, match=r"failed at line 2: RuntimeError: no config"):
        load_agent(str(raising))
    empty = agent_file(tmp_path, "X = 1\n", "empty.py")
    with pytest.raises(AgentLoadError, match="defines no Agent subclass"):
        load_agent(str(empty))


def test_agent_errors_exit_2_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = agent_file(tmp_path, "def f(:\n", "broken.py")
    assert main(["--headless", "--agent", str(broken), *NO_MODELS]) == 2
    err = capsys.readouterr().err
    assert err.startswith("voicetui: --agent: importing") and "SyntaxError" in err
    assert "Traceback" not in err


def test_agent_file_can_import_its_neighbours(tmp_path: Path) -> None:
    agent_file(tmp_path, "PROMPT = 'from a neighbour'\n", "prompts_mod.py")
    path = agent_file(
        tmp_path,
        """
        from prompts_mod import PROMPT
        from voicetui.agents import Agent

        class A(Agent):
            def __init__(self) -> None:
                super().__init__(instructions=PROMPT)
        """,
        "with_neighbour.py",
    )
    assert build(str(path)).instructions == "from a neighbour"


# --- first-run check ----------------------------------------------------------------------------
def test_first_run_check_lists_each_problem_and_exits_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--headless", "--stt", "openai", "--llm", "none", "--tts", "none"]) == 2
    err = capsys.readouterr().err
    assert "voicetui: OpenAI models were chosen but OPENAI_API_KEY is not set" in err
    assert "choose other providers with --stt/--llm/--tts/--vad" in err
    assert "Traceback" not in err


def test_first_run_check_one_line_per_problem(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import voicetui.plugins.selection as selection

    monkeypatch.setattr(selection, "check_requirements", lambda r: ["problem one", "problem two"])
    assert main([]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[:2] == ["voicetui: problem one", "voicetui: problem two"]


# --- handing over ------------------------------------------------------------------------------
def test_the_tui_gets_the_controller(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import logging

    import voicetui.tui.app as app

    seen: dict[str, Any] = {}

    def fake_run_app(runtime: Any, *, theme: str | None = None, title: str | None = None) -> int:
        seen["runtime"], seen["kwargs"] = runtime, {"theme": theme}
        logging.getLogger("voicetui.test").error("must not reach the terminal")
        seen["installed"] = runtime.log_capture.installed
        return 3

    monkeypatch.setattr(app, "run_app", fake_run_app)
    assert main(["--mode", "text", "--theme", "light", *NO_MODELS]) == 3
    from voicetui.runtime.controller import SessionController

    runtime = seen["runtime"]
    assert isinstance(runtime, SessionController) and runtime.log_capture is not None
    assert runtime.settings.mode == "text"
    assert seen["kwargs"].get("theme") == "light"
    assert seen["installed"] and not runtime.log_capture.installed
    assert "must not reach the terminal" not in capsys.readouterr().err


def test_a_missing_tui_is_explained(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "voicetui.tui.app", None)
    assert main(["--mode", "text", *NO_MODELS]) == 1
    assert "the terminal UI is not available in this build" in capsys.readouterr().err


def test_headless_from_main(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("hello\n"))
    assert main(["--headless", "--mode", "text", *NO_MODELS]) == 1  # no turn got a reply
    captured = capsys.readouterr()
    assert "user: hello" in captured.out and "error: llm:" in captured.out
    assert "no reply to any of the 1 turn" in captured.err


def test_recording_subcommands_on_a_recorded_session(tmp_path: Path) -> None:
    import io
    import threading

    from voicetui.agents import Agent
    from voicetui.agents.testing import FakeLLM
    from voicetui.config import Settings
    from voicetui.plugins.selection import SessionModels
    from voicetui.runtime.controller import SessionController

    controller = SessionController(
        Settings(mode="text"),  # type: ignore[arg-type]
        agent=Agent(instructions="Be brief."),
        models=SessionModels(stt=None, vad=None, llm=FakeLLM(default="Noon."), tts=None),
    )
    replied = threading.Event()
    controller.subscribe(
        lambda ev: (
            replied.set()
            if ev.type == "conversation_item_added" and getattr(ev.item, "role", "") == "assistant"
            else None
        )
    )
    controller.start().result(30)
    directory = controller.start_recording(str(tmp_path)).result(30)
    controller.send_text("what time is it").result(30)
    assert replied.wait(30)
    controller.stop_recording().result(30)
    controller.stop().result(30)
    controller.join(10)
    out = io.StringIO()
    with redirect_stdout(out):  # (not a terminal: the recording as text)
        assert main(["show", directory]) == 0
    assert "what time is it" in out.getvalue() and "Noon." in out.getvalue()
    assert main(["recording", "repair", directory]) == 0
    assert main(["show", str(tmp_path / "nothing")]) == 2  # a readable error, exit code 2


# --- show and replay --------------------------------------------------------------------------
def _voice_recording(root: Path) -> Path:
    """Three spoken turns with two tool calls, recorded with fakes on virtual time."""
    import looptime

    from tests.test_recording_replay import record_original

    loop = looptime.new_event_loop(start=0.0)
    try:
        return loop.run_until_complete(record_original(root))
    finally:
        loop.close()


def test_cli_replay_in_a_subprocess_shows_the_same_turns_and_tool_calls(tmp_path: Path) -> None:
    """``voicetui replay DIR`` (fast pace) with an agent file that brings its own scripted
    models: the printed diff has the same user turns and tool calls."""
    import os

    original = _voice_recording(tmp_path)
    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "VOICETUI_CONFIG": str(tmp_path / "no-config.toml")}
    env.pop("OPENAI_API_KEY", None)
    agent = f"{repo / 'tests' / '_recording_child.py'}:ScriptedWeatherAgent"
    cmd = [sys.executable, "-m", "voicetui", "replay", str(original), "--agent", agent]
    cmd += [*NO_MODELS, "--record", str(tmp_path / "replays")]
    done = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=90)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert f"replayed {original}" in out
    assert "user transcripts: equal (3 turns)" in out
    assert "tool calls:       equal (3 turns) (A 2 calls, B 2 calls)" in out
    assert out.count('get_weather({"city": "Paris"}) → sunny in Paris') == 2  # A and B
    assert out.count('get_weather({"city": "Rome"}) → sunny in Rome') == 2

    from voicetui.recording import load_recording

    (new_dir,) = (tmp_path / "replays").iterdir()
    new = load_recording(new_dir)
    assert new.session["metadata"] == {"replay_of": original.name, "realtime": False}
    assert "ScriptedWeatherAgent" in new.session["agent"]["class"]


def test_show_prints_text_off_a_terminal_and_opens_the_tui_on_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import voicetui.tui.app as app
    from voicetui.runtime.recording_view import RecordingRuntime

    directory = _voice_recording(tmp_path)
    assert main(["show", str(directory)]) == 0  # stdout is not a terminal: text
    printed = capsys.readouterr().out
    assert "user: weather in paris" in printed and "tool get_weather" in printed
    assert main(["show", "--text", str(directory)]) == 0
    assert "agent: You are welcome." in capsys.readouterr().out

    seen: dict[str, Any] = {}

    def fake_run_app(runtime: Any, **kw: Any) -> int:
        seen["runtime"], seen["kw"] = runtime, kw
        return 0

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(app, "run_app", fake_run_app)
    monkeypatch.setattr(sys, "stdout", Terminal())
    args = ["show", str(directory), "--at", "5", "--speed", "2", "--theme", "light"]
    assert main(args) == 0
    view = seen["runtime"]
    assert isinstance(view, RecordingRuntime) and view.directory == directory
    assert view.read_only and seen["kw"] == {"theme": "light"}
    assert view.title.startswith(f"RECORDING {directory.name} · ")
    assert main(["show", str(tmp_path / "nothing")]) == 2
    assert main(["show", str(directory), "--speed", "0"]) == 2
