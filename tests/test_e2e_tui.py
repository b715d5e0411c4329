"""End to end: the real ``voicetui`` in a real terminal (tmux, 120×40) on virtual audio devices,
with the default agent and the embedded offline models (Silero VAD, Whisper tiny.en,
Qwen2.5-Coder-0.5B-Instruct on llama.cpp, Piper). A question spoken with espeak-ng goes into the virtual
microphone; the test reads the transcript, the tool call and the reply off the screen (which
tool is called is decided by the default agent's rules, not by the model, so the call is
checked exactly; the quality of replies is left to ``voicetui eval``), checks that the reply was heard on the virtual speaker, quits with ctrl+q and
checks the exit was clean.

It takes about a minute (most of it loading the models). It is skipped when tmux, espeak-ng,
PulseAudio or the embedded models are missing — except under ``CI``, where it must run.

The bugs this run found are pinned at the end by fast tests of the pieces involved.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import fake_runtime as fr
from tests.audio_fixtures import espeak_wav
from tests.fake_runtime import FakeRuntime, settle
from tests.tmux_driver import TmuxSession
from tests.virtual_audio import VirtualAudio, virtual_audio_fixture  # noqa: F401
from voicetui.default_agent.router import route
from voicetui.plugins.selection import ModelSelection, check_requirements, resolve
from voicetui.tui.app import VoiceTUIApp
from voicetui.tui.widgets.header import SessionHeader
from voicetui.tui.widgets.loading import LoadingPanel

ROOT = Path(__file__).resolve().parents[1]
QUESTION = "What time is it?"
HEARD = re.compile(r"\btime\b", re.I)
"""What the transcript must contain (Whisper's punctuation and case vary)."""
TOOL = "get_time("
WIDTH, HEIGHT = 120, 40

LOAD_TIMEOUT = 150.0  # the first start assembles and loads ~1 GB of models on a loaded machine
HEAR_TIMEOUT = 45.0
REPLY_TIMEOUT = 90.0


def _missing() -> list[str]:
    missing = [t for t in ("tmux", "espeak-ng") if shutil.which(t) is None]
    missing += check_requirements(resolve(ModelSelection(), env={}))
    return missing


def _voicetui() -> list[str]:
    """The installed ``voicetui`` script next to this Python, else ``python -m voicetui`` (the
    same entry point, for a checkout that was not installed)."""
    script = Path(sys.executable).with_name("voicetui")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "voicetui"]


# --- reading the screen ---------------------------------------------------------------------------
SIDEBAR = "▏"


def conversation(screen: str) -> list[str]:
    """The conversation column's lines (left of the sidebar), right-stripped."""
    return [line.split(SIDEBAR, 1)[0].rstrip() for line in screen.splitlines()]


def sidebar(screen: str) -> str:
    return "\n".join(line.split(SIDEBAR, 1)[1] for line in screen.splitlines() if SIDEBAR in line)


def turns(screen: str) -> list[tuple[str, str]]:
    """``(who, text)`` of the conversation's entries: who is "You", "Agent", "tool" or "" (a
    notice); wrapped lines are joined."""
    out: list[tuple[str, str]] = []
    for line in conversation(screen):
        m = re.match(r"^ (You|Agent|[✗!ℹ·⇄])?\s+(\S.*)$", line)
        if m is None:
            continue
        who, text = m.group(1), m.group(2)
        if who is None and text.startswith("➜ "):
            out.append(("tool", text[2:]))
        elif who is None and out and line.startswith(" " * 8):
            out[-1] = (out[-1][0], f"{out[-1][1]} {text}")  # a wrapped line
        elif who is not None:
            out.append((who if who in ("You", "Agent") else "", text))
    return out


def models_ready(screen: str) -> bool:
    if "failed" in screen and "Loading models" in screen:
        raise AssertionError(f"a model failed to load:\n{screen}")
    return (
        "Loading models" not in screen
        and "loading models" not in screen
        and re.search(r"Agent\s+● listening", sidebar(screen)) is not None
    )


def asked(screen: str) -> bool:
    return any(who == "You" and HEARD.search(text) for who, text in turns(screen))


def answered(screen: str) -> bool:
    """An agent reply after the question, and the agent is back to listening."""
    seen_question = False
    for who, text in turns(screen):
        if who == "You" and HEARD.search(text):
            seen_question = True
        elif seen_question and who == "Agent" and text.strip("… ") != "":
            return re.search(r"Agent\s+● listening", sidebar(screen)) is not None
    return False


def wait(tmux: TmuxSession, what: Callable[[str], bool], timeout: float, doing: str) -> str:
    try:
        return tmux.wait_for(what, timeout=timeout, interval=0.25)
    except TimeoutError as e:
        screen = tmux.capture()
        calls = [text for who, text in turns(screen) if who == "tool"]
        hint = ""
        if len(calls) > 1 and len(set(c.split("  ")[0] for c in calls)) == 1:
            hint = (
                f"\nthe agent made the same tool call {len(calls)} times and never answered "
                "(the local LLM repeats a call instead of using its result)"
            )
        raise AssertionError(f"{doing}: nothing after {timeout:g} s{hint}\n{screen}") from e


# --- the test -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_talk_to_the_real_app_in_a_terminal(virtual_audio: VirtualAudio, tmp_path: Path) -> None:
    missing = _missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs everything for the end-to-end test; missing: {missing}")
        pytest.skip(f"missing: {'; '.join(missing)}")
    question = espeak_wav(QUESTION, tmp_path / "question.wav")
    home = tmp_path / "home"  # config, notes and logs of this run only (models stay cached)
    env = {
        "XDG_RUNTIME_DIR": virtual_audio.env["XDG_RUNTIME_DIR"],
        "PULSE_SERVER": virtual_audio.env["PULSE_SERVER"],
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_STATE_HOME": str(home / "state"),
        "OPENAI_API_KEY": "",  # the embedded models, whatever the environment has
        "OPENAI_BASE_URL": "",
    }
    command = [*_voicetui(), "--mode", "local"]
    with (
        TmuxSession(command, width=WIDTH, height=HEIGHT, env=env, cwd=ROOT) as tmux,
        virtual_audio.record_speaker_sync(tmp_path / "speaker.raw") as speaker,
    ):
        screen = wait(tmux, models_ready, LOAD_TIMEOUT, "loading the models")
        assert "LOCAL" in screen and "STT local, LLM local, TTS local" in screen, screen
        assert tmux.pane_info() == (False, WIDTH, HEIGHT)

        virtual_audio.play_into_mic_sync(question)
        screen = wait(tmux, asked, HEAR_TIMEOUT, f"hearing {QUESTION!r}")
        screen = wait(tmux, answered, REPLY_TIMEOUT, "the agent's reply")

        entries = turns(screen)
        user = next(text for who, text in entries if who == "You" and HEARD.search(text))
        reply = [text for who, text in entries if who == "Agent"][-1]
        calls = [text for who, text in entries if who == "tool"]
        print(f"\nheard: {user!r}\ntool calls: {calls}\nreply: {reply!r}")
        # the default agent's router, not the model, picks the tool for what was heard
        assert route(user).tools == ("get_time",), user
        assert len(calls) == 1 and calls[0].startswith(TOOL) and "✓" in calls[0], screen
        assert len(reply) > 3, screen
        assert re.search(r"Last e2e\s+\d+\.\d\d s", sidebar(screen)), screen
        # the reply's turn is in the latency rows (turn 1 with its e2e)
        assert re.search(r"^\s+1\s+\d+\.\d\d", sidebar(screen), re.M), screen

        tmux.send_keys("C-q")
        status = tmux.wait_for_exit(timeout=60)
        after = tmux.capture(history=True)
    assert status == 0, after
    assert "Traceback" not in after and "voicetui:" not in after, after
    # the reply was spoken: at least half a second of audio reached the speaker
    assert speaker.loud_span() >= 0.5, f"the speaker stayed silent ({speaker.samples.size} samples)"


# --- regressions the real run found, pinned fast --------------------------------------------------
async def test_a_late_progress_report_does_not_reopen_a_ready_model() -> None:
    """llama.cpp's prewarm reports its last "prime 1/1" from its worker thread: it reaches the
    UI after "ready". The model stays ready (it showed "100%" and "loading 3/4" for good)."""
    rt = FakeRuntime()
    app = VoiceTUIApp(rt, bridge_interval=0)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        rt.emit(
            fr.loading("stt", "whisper", "ready", 1.0),
            fr.loading("llm", "qwen", "prime", 0.0),
            fr.loading("llm", "qwen", "ready", 1.0),
            fr.loading("llm", "qwen", "prime", 1.0),
        )
        await settle(pilot)
        panel = app.query_one(LoadingPanel)
        assert panel.ready and not panel.has_class("-active")
        assert app.query_one(SessionHeader).loading_text == ""
        rt.emit(fr.loading("llm", "qwen", "start", 0.0))  # loading it again does show
        await settle(pilot)
        assert not panel.ready and panel.has_class("-active")
