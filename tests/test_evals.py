"""``voicetui eval``: scenario files, the per-turn checks, the reports, and a small real run whose
JUnit output is read back (scripted LLM: fast and deterministic; model quality is the eval's
business, not the test suite's)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from voicetui.evals.checks import ToolUse, TurnOutcome, check_turn, ungrounded, unspeakable
from voicetui.evals.scenario import Defaults, Expect
from voicetui.evals.source import EvalFileError, load_suite


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    return path


# --- scenario files ----------------------------------------------------------------------------
def test_a_valid_file_loads_with_paths_relative_to_it(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
defaults: {speakable: true}
scenarios:
  - name: clock
    turns:
      - say: What time is it?
        expect: {tool: get_time, matches: '\\d'}
      - wav: audio/q.wav
        expect: {tool: [get_time, {name: calculate, args: {expression: "2 + 2"}}]}
""",
    )
    [loaded] = load_suite(path)
    assert loaded.suite.defaults.speakable
    first, second = loaded.scenario.turns
    assert [t.name for t in first.expect.tools()] == ["get_time"]
    assert second.wav == tmp_path / "audio" / "q.wav"
    assert [(t.name, t.args) for t in second.expect.tools()] == [
        ("get_time", {}),
        ("calculate", {"expression": "2 + 2"}),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "scenarios:\n  - name: a\n    turns:\n      - say: hi\n        wav: x.wav\n",
            "suite.yaml:4: scenarios[0].turns[0]: give exactly one of say, wav or recording",
        ),
        (
            "scenarios:\n  - name: a\n    turns:\n      - say: hi\n        expect:\n"
            "          within_ms: -3\n",
            "suite.yaml:6: scenarios[0].turns[0].expect.within_ms: Input should be greater than 0",
        ),
        (
            "scenarios:\n  - name: a\n    turns:\n      - say: hi\n        expect: {matches: '('}\n",
            "suite.yaml:5: scenarios[0].turns[0].expect.matches: not a regular expression",
        ),
        (
            "scenarios:\n  - name: a\n    turns:\n      - say: hi\n        expect: {tol: x}\n",
            "suite.yaml:5: scenarios[0].turns[0].expect.tol: Extra inputs are not permitted",
        ),
        ("scenarios: [\n", "suite.yaml:2: not valid YAML"),
        ("scenarios: []\n", "suite.yaml:1: scenarios: List should have at least 1 item"),
    ],
)
def test_errors_name_the_file_line_and_field(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(EvalFileError) as info:
        load_suite(write(tmp_path, text))
    assert message in str(info.value)


# --- checks ------------------------------------------------------------------------------------
def test_unspeakable_replies() -> None:
    assert unspeakable("It is 14:05 on Tuesday.") is None
    assert unspeakable("Sure, here's a joke: why?") is not None
    assert unspeakable("Two things:\n- one") is not None
    assert unspeakable("That is **bold**.") is not None
    assert unspeakable("Nice 😀") is not None
    assert unspeakable('{"name": "get_time", "arguments": {}}') is not None


def test_grounded_numbers_dates_and_times() -> None:
    tool = "14:05 on Tuesday 24 November 2026 (Europe/Paris, UTC+01:00)"
    assert ungrounded("It is 14:05 on Tuesday, 24 November.", [tool]) == []
    assert ungrounded("It's 2:05 in the afternoon.", [tool]) == []  # 12-hour clock
    assert ungrounded("It is 15:30 on Monday.", [tool]) == ["15", "30", "Monday"]
    assert ungrounded("1234 times 5678 is 7,006,652.", ["1234 times 5678 is 7006652"]) == []
    assert ungrounded("That is 686204.", ["what is 1234 times 5678"]) == ["686204"]
    assert ungrounded("Pi is about 3.14.", ["pi is 3.141592654"]) == []


def test_check_turn_reports_why() -> None:
    outcome = TurnOutcome(
        "what is 6 times 7",
        tools=[ToolUse("calculate", {"expression": "6*7"}, "6 times 7 is 42")],
        reply="It is 43.",
        e2e_ms=900.0,
    )
    expect = Expect(
        tool={"name": "calculate", "args": {"expression": "6*7"}},  # type: ignore[arg-type]
        contains="42",
        within_ms=500,
    )
    failed = {
        c.check: c.why
        for c in check_turn(outcome, expect, Defaults(grounded=True, speakable=True))
        if not c.passed
    }
    assert failed == {
        "contains '42'": "reply: 'It is 43.'",
        "within 500 ms": "900 ms > 500 ms",
        "grounded": "states 43, which no tool returned",
    }
    wrong_tool = check_turn(TurnOutcome("hi", reply="Hello."), Expect(tool="get_time"), Defaults())
    assert [(c.passed, c.why) for c in wrong_tool] == [(False, "called no tool")]
    no_tool = check_turn(
        TurnOutcome("hi", tools=[ToolUse("get_time", {}, "")], reply="Hi."),
        Expect(no_tool=True),
        Defaults(),
    )
    assert [(c.passed, c.why) for c in no_tool] == [(False, "called get_time")]


# --- a whole run, through the command line -------------------------------------------------------
AGENT = '''
from typing import Annotated
from pydantic import Field
from voicetui.agents import Agent, function_tool


class Adder(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You add numbers.")

    @function_tool
    async def add(self, a: Annotated[int, Field(description="a")], b: int) -> str:
        """Add two numbers."""
        return f"{a} plus {b} is {a + b}"
'''

SUITE = """\
defaults: {speakable: true, grounded: true}
scenarios:
  - name: adding
    turns:
      - say: Add 2 and 3.
        expect: {tool: {name: add, args: {a: 2}}, contains: "5"}
      - say: Hello!
        expect: {no_tool: true, judge: greets the user}
  - name: leaving
    turns:
      - say: Bye.
        expect: {contains: nope}
  - name: skipped by -k
    turns:
      - say: Not run.
"""


@pytest.fixture
def chat_server() -> Any:
    """The OpenAI-compatible test server on a loop of its own (the command runs its own)."""
    import asyncio
    import threading

    from .openai_test_server import OpenAITestServer

    server = OpenAITestServer()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    yield server
    asyncio.run_coroutine_threadsafe(server.aclose(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def test_eval_command_writes_junit_a_test_can_read(
    tmp_path: Path,
    chat_server: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from voicetui.cli import main

    from .openai_test_server import Reply, ScriptedToolCall

    chat_server.add(
        Reply(tool_calls=[ScriptedToolCall("add", {"a": 2, "b": 3})]),
        Reply(text="2 plus 3 is 5."),
        Reply(text="Hi there!"),
        Reply(text="PASS: it says hi"),  # the judge
        Reply(text="Goodbye."),
    )
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", chat_server.base_url)
    monkeypatch.setenv("VOICETUI_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "adder.py").write_text(AGENT)
    suite = write(tmp_path, SUITE)
    junit, report = tmp_path / "out.xml", tmp_path / "out.json"
    argv = ["eval", str(suite), "--agent", str(tmp_path / "adder.py"), "-k", "ing"]
    code = main([*argv, "--junit", str(junit), "--json", str(report), "--all"])
    out = capsys.readouterr().out
    assert code == 1  # one turn failed
    assert "text: 2/3 turns passed" in out

    root = ET.parse(junit).getroot()
    [suite_el] = root.findall("testsuite")
    assert (suite_el.get("tests"), suite_el.get("failures")) == ("3", "1")
    cases = {c.get("name"): c for c in suite_el.findall("testcase")}
    assert list(cases) == [
        "turn 1 (run 1): Add 2 and 3.",
        "turn 2 (run 1): Hello!",
        "turn 1 (run 1): Bye.",
    ]
    assert cases["turn 1 (run 1): Add 2 and 3."].find("failure") is None
    assert "tool: add" in (cases["turn 1 (run 1): Add 2 and 3."].findtext("system-out") or "")
    assert "judge: PASS: it says hi" in (
        cases["turn 2 (run 1): Hello!"].findtext("system-out") or ""
    )
    failure = cases["turn 1 (run 1): Bye."].find("failure")
    assert failure is not None and "contains 'nope'" in (failure.get("message") or "")
    assert [c.get("classname") for c in cases.values()] == [
        "suite.adding",
        "suite.adding",
        "suite.leaving",
    ]
    import json

    data = json.loads(report.read_text())
    assert data["summary"]["text"]["passed"] == 2
    # the judge saw the user's words and the reply
    judge_request = chat_server.received()[3]
    assert "Reply: Hi there!" in judge_request["messages"][-1]["content"]


def test_eval_command_refuses_a_bad_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from voicetui.cli import main

    suite = write(tmp_path, "scenarios:\n  - name: x\n    turns: []\n")
    assert main(["eval", str(suite)]) == 2
    assert "suite.yaml:3: scenarios[0].turns: List should have at least 1 item" in (
        capsys.readouterr().err
    )


def test_the_user_voice_is_piper_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    from voicetui.evals import speech

    monkeypatch.setattr(speech, "piper_installed", lambda: True)
    assert speech.resolve_voice("auto") == "piper"
    assert speech.resolve_voice("espeak") == "espeak"
    monkeypatch.setattr(speech, "piper_installed", lambda: False)
    assert speech.resolve_voice("auto") == "espeak"
    with pytest.raises(speech.TurnAudioError, match="piper extra"):
        speech.resolve_voice("piper")
    spoken: list[str] = []

    def fake_espeak(text: str) -> np.ndarray:
        spoken.append(text)
        return np.zeros(1, np.int16)

    monkeypatch.setattr(speech, "espeak", fake_espeak)
    speech.speak("hello", "auto")
    assert spoken == ["hello"]


@pytest.mark.parametrize("name", ["default_agent.yaml", "default_agent_heldout.yaml"])
def test_the_example_suites_validate(name: str) -> None:
    path = Path(__file__).resolve().parent.parent / "examples" / "evals" / name
    assert load_suite(path)
