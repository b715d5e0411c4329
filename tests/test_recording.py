"""Recording a session with the framework fakes on virtual time: every file parsed back, audio
aligned with the event timestamps, permissions, secrets, disk errors and stalls, mode switches."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import stat
import threading
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.transcript_md import parse_transcript
from voicetui.agents import Agent, AgentSession, RunContext, function_tool
from voicetui.agents.llm import FunctionCall, FunctionCallOutput
from voicetui.agents.testing import (
    FakeAudioInput,
    FakeAudioOutput,
    FakeLLM,
    FakeLLMResponse,
    FakeSTT,
    FakeToolCall,
    FakeTTS,
    FakeVAD,
    Utterance,
)
from voicetui.agents.voice import ToolExecution
from voicetui.recording import Recorder, RecordingError, load_recording
from voicetui.recording.taps import RecordingAudioInput, RecordingAudioOutput
from voicetui.runtime.api import AudioLevels, ModeChanged, Notice, RoomDetails, ToolRerun

pytestmark = [pytest.mark.looptime, pytest.mark.usefixtures("no_leaks")]

RATE = 24000
FRAME = 0.01  # the alignment tolerance: one 10 ms frame
LONG = (
    "Paris is sunny today with a light breeze from the west and a high of twenty one degrees, "
    "perfect for a walk along the river before the evening clouds roll in from the sea."
)
FILES = ("audio.wav", "user.wav", "agent.wav", "events.jsonl", "transcript.md", "session.json")


class WeatherAgent(Agent):
    def __init__(self, secret_output: str = "") -> None:
        super().__init__(instructions="You report the weather.")
        self.secret_output = secret_output

    @function_tool
    async def get_weather(self, ctx: RunContext[None], city: str) -> str:
        """Current weather in a city."""
        await asyncio.sleep(0.2)
        return f"sunny in {city}{self.secret_output}"


def active_regions(
    x: np.ndarray, rate: int, thr: int = 500, gap: float = 0.05
) -> list[tuple[float, float]]:
    """(start, end) seconds of stretches louder than ``thr`` (gaps under ``gap`` merged)."""
    idx = np.flatnonzero(np.abs(x.astype(np.int32)) > thr)
    if idx.size == 0:
        return []
    regions: list[list[int]] = [[int(idx[0]), int(idx[0])]]
    max_gap = round(gap * rate)
    for i in idx[1:]:
        if i - regions[-1][1] > max_gap:
            regions.append([int(i), int(i)])
        else:
            regions[-1][1] = int(i)
    return [(a / rate, (b + 1) / rate) for a, b in regions]


class Rig:
    def __init__(self, root: Path, *, llm: FakeLLM | None = None, **rec_kw: Any) -> None:
        self.llm = llm or FakeLLM(
            [
                FakeLLMResponse(
                    input="weather in paris",
                    tool_calls=[FakeToolCall("get_weather", {"city": "Paris"})],
                    ttft=0.1,
                ),
                FakeLLMResponse(content=LONG, ttft=0.2),
                FakeLLMResponse(input="stop please", content="Okay.", ttft=0.1),
            ],
            default="Fine.",
        )
        self.session: AgentSession[None] = AgentSession(
            vad=FakeVAD(),
            stt=FakeSTT(final_delay=0.2),
            llm=self.llm,
            tts=FakeTTS(ttfb=0.1, frame_duration=0.01),
            user_away_timeout=None,
        )
        self.mic = FakeAudioInput(
            [
                Utterance(1.0, silence_before=0.5, transcript="weather in paris"),
                Utterance(1.0, silence_before=2.5, transcript="stop please"),
            ],
            sample_rate=16000,
        )
        self.out = FakeAudioOutput()
        self.errors: list[str] = []
        self.rec = Recorder(
            root,
            session=self.session,
            sample_rate=RATE,
            on_error=self.errors.append,
            **({"metadata": {"test": "round trip"}} | rec_kw),
        )

    async def start(self, agent: Agent | None = None) -> Path:
        d = await self.rec.start()
        self.session.input.audio = self.mic
        self.session.output.audio = self.out
        self.rec.attach()
        await self.session.start(agent or WeatherAgent())
        return d

    async def aclose(self) -> None:
        await self.rec.stop()
        await self.session.aclose()
        await self.out.aclose()


async def test_round_trip_every_file_parses_and_audio_is_aligned(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    d = await rig.start()
    await asyncio.sleep(9)
    await rig.aclose()
    assert rig.errors == []
    assert sorted(os.listdir(d)) == sorted(FILES)

    rec = load_recording(d)
    assert rec.warnings == []
    assert rec.sample_rate == RATE

    # --- events ---------------------------------------------------------------------------
    types = [e.type for e in rec.events]
    assert types[0] == "recording_started" and types[-1] == "recording_stopped"
    for t in ("user_input_transcribed", "agent_state_changed", "user_state_changed",
              "conversation_item_added", "function_tools_started", "function_tools_executed",
              "speech_created", "metrics_collected", "audio_input_attached",
              "audio_playback_started", "audio_playback_finished"):  # fmt: skip
        assert t in types, t
    ts = [e.t for e in rec.events]
    assert ts == sorted(ts)
    walls = [e.wall for e in rec.events]
    assert walls == sorted(walls) and walls[0] > 1e9

    # --- the conversation -----------------------------------------------------------------
    assert [t.user for t in rec.turns] == ["weather in paris", "stop please"]
    (call,) = rec.tool_calls
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
    assert call.output == "sunny in Paris" and not call.is_error
    first, second = rec.turns
    assert first.replies[0].interrupted and LONG.startswith(first.replies[0].text)
    assert 0 < len(first.replies[0].text) < len(LONG)
    assert second.agent_text == "Okay." and not second.replies[0].interrupted
    lat = second.latency
    assert lat.e2e is not None and lat.llm_ttft == pytest.approx(0.1, abs=0.02)
    assert lat.tts_ttfb == pytest.approx(0.1, abs=0.02) and lat.eou is not None

    # --- transcript.md --------------------------------------------------------------------
    entries = parse_transcript((d / "transcript.md").read_text())
    whos = [e.who for e in entries]
    # the first agent is announced, as every handoff is
    assert whos[:5] == ["Handoff", "User", "Tool call", "Agent (interrupted)", "User"]
    assert "Agent" in whos and whos[-1] == "Recording stopped"
    assert entries[1].text == "weather in paris"
    assert entries[1].t == pytest.approx(rec.turns[0].t, abs=0.01)
    assert (
        'get_weather({"city": "Paris"})' in entries[2].text and "sunny in Paris" in entries[2].text
    )
    okay = next(e for e in entries if e.who == "Agent")
    assert okay.text == "Okay." and set(okay.latency) == {"e2e", "EOU", "LLM TTFT", "TTS TTFB"}

    # --- session.json ---------------------------------------------------------------------
    info = rec.session
    assert info["format"] == "voicetui-recording/1" and info["id"] == d.name
    assert info["versions"]["voicetui"] and info["versions"]["python"]
    assert "numpy" in info["versions"]["packages"]
    assert info["models"]["llm"]["model"] == "fake-llm"
    assert info["agent"]["tools"] == ["get_weather"]
    assert info["options"]["min_endpointing_delay"] == 0.5
    assert info["metadata"] == {"test": "round trip"}
    assert info["stopped_at"] and info["duration"] == pytest.approx(9.0, abs=0.1)

    # --- audio: lengths, channels, mono files ---------------------------------------------
    for name, ch in (("audio.wav", 2), ("user.wav", 1), ("agent.wav", 1)):
        with wave.open(str(d / name)) as w:
            assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (ch, 2, RATE)
            assert w.getnframes() == len(rec.audio)
    assert len(rec.audio) / RATE == pytest.approx(9.0, abs=0.05)
    assert np.array_equal(rec.audio[:, 0], rec.user_audio)
    assert np.array_equal(rec.audio[:, 1], rec.agent_audio)

    # --- user channel: speech where the scripted utterances were --------------------------
    (attached,) = rec.of("audio_input_attached")
    user = active_regions(rec.user_audio, RATE)
    assert len(user) == 2
    assert user[0][0] == pytest.approx(attached.t + 0.5, abs=FRAME)
    assert user[0][1] - user[0][0] == pytest.approx(1.0, abs=FRAME)
    assert user[1][0] == pytest.approx(attached.t + 0.5 + 1.0 + 2.5, abs=FRAME)
    speaking = [e.t for e in rec.of("user_state_changed") if e.event["new_state"] == "speaking"]
    for (onset, _), t in zip(user, speaking, strict=True):
        assert t - onset == pytest.approx(0.05, abs=FRAME)  # FakeVAD's min_speech_duration

    # --- agent channel: what was played, where it was played ------------------------------
    agent = active_regions(rec.agent_audio, RATE)
    starts = rec.of("audio_playback_started")
    ends = rec.of("audio_playback_finished")
    assert len(agent) == len(starts) == len(ends) == 2
    for (onset, end), s, f in zip(agent, starts, ends, strict=True):
        assert onset == pytest.approx(s.t, abs=FRAME)
        assert end == pytest.approx(s.t + f.event["playback_position"], abs=FRAME)
        assert end == pytest.approx(f.t, abs=FRAME)  # interrupted audio ends where it stopped
    assert ends[0].event["interrupted"] and not ends[1].event["interrupted"]
    speaking_agent = [
        e.t for e in rec.of("agent_state_changed") if e.event["new_state"] == "speaking"
    ]
    assert [round(t, 3) for t in speaking_agent] == [round(s.t, 3) for s in starts]
    # the interruption: the user's second utterance, 0.5 s in (min_interruption_duration)
    assert agent[0][1] == pytest.approx(user[1][0] + 0.5, abs=FRAME)
    assert agent[1][1] - agent[1][0] == pytest.approx(len("Okay.") * 0.05, abs=FRAME)


async def test_files_and_folder_are_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        rig = Rig(tmp_path / "deep" / "root")
        d = await rig.start()
        await asyncio.sleep(1)
        await rig.aclose()
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tmp_path / "deep" / "root").st_mode) == 0o700
    for name in os.listdir(d):
        assert stat.S_IMODE(os.stat(d / name).st_mode) == 0o600, name
    assert d.name[:8].isdigit() and d.name[8] == "-" and len(d.name.split("-")[-1]) == 6


async def test_secrets_never_reach_any_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    openai_key = "sk-test0123456789abcdefSECRET"
    lk_secret = "LkSecretValue9876543210"
    lk_token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.c2lnbmF0dXJlc2VjcmV0"
    registered = "hunter2-registered"
    monkeypatch.setenv("OPENAI_API_KEY", openai_key)

    class KeyedLLM(FakeLLM):
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, **kw)
            self.api_key = "model-held-key-4242"

    llm = KeyedLLM(
        [
            FakeLLMResponse(
                input="weather in paris",
                tool_calls=[FakeToolCall("get_weather", {"city": f"Paris {lk_token}"})],
            ),
            FakeLLMResponse(content=f"Your key is {openai_key} and {registered}."),
        ],
        default=f"the model-held key is model-held-key-4242, secret {lk_secret}",
    )
    metadata = {
        "room": RoomDetails(
            url="wss://x.livekit.cloud", room="r", token=lk_token, api_secret=lk_secret
        ),
        "config": {"openai": {"api_key": openai_key}, "note": f"password={registered}"},
    }
    rig = Rig(tmp_path, llm=llm, secrets=[registered], metadata=metadata)
    d = await rig.start(WeatherAgent(secret_output=f" ({lk_secret} {registered} {openai_key})"))
    rig.rec.record_event(Notice(level="info", message=f"connected with {lk_token}"))
    rig.rec.add_secret("late-added-secret")
    rig.rec.record_event(Notice(level="info", message="late-added-secret appears"))
    await asyncio.sleep(8)
    await rig.aclose()
    assert rig.errors == []
    blob = b"".join((d / n).read_bytes() for n in os.listdir(d))
    for s in (
        openai_key,
        lk_secret,
        lk_token,
        registered,
        "model-held-key-4242",
        "late-added-secret",
    ):
        assert s.encode() not in blob, s
    assert b"***" in blob
    rec = load_recording(d)
    assert rec.tool_calls and "***" in rec.tool_calls[0].output
    assert rec.session["metadata"]["room"]["api_secret"] == "***"


def _fd_under(fd: int, root: Path) -> bool:
    try:
        return os.readlink(f"/proc/self/fd/{fd}").startswith(str(root))
    except OSError:
        return False


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Makes writes to files under tmp_path fail with ENOSPC (``state["full"]``) or block
    (``state["stall"]`` cleared) for as long as the test says."""
    state: dict[str, Any] = {"full": False, "stall": threading.Event(), "failed": 0}
    state["stall"].set()
    real_write, real_pwrite = os.write, os.pwrite

    def check(fd: int) -> None:
        if _fd_under(fd, tmp_path):
            state["stall"].wait(60)
            if state["full"]:
                state["failed"] += 1
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def write(fd: int, data: Any) -> int:
        check(fd)
        return real_write(fd, data)

    def pwrite(fd: int, data: Any, offset: int) -> int:
        check(fd)
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr(os, "pwrite", pwrite)
    yield state
    state["stall"].set()


async def test_disk_full_is_one_clear_error_and_the_conversation_goes_on(
    tmp_path: Path, disk: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    rig = Rig(tmp_path)
    d = await rig.start()
    await asyncio.sleep(1.0)
    disk["full"] = True
    await asyncio.sleep(8)
    assert rig.errors and len(rig.errors) == 1
    assert "No space left on device" in rig.errors[0] and str(d) in rig.errors[0]
    assert rig.rec.error == rig.errors[0]
    assert sum("No space left" in r.getMessage() for r in caplog.records) == 1
    # the conversation went on without the recording
    msgs = [m.text_content for m in rig.session.history.messages() if m.role == "user"]
    assert msgs == ["weather in paris", "stop please"]
    failed = disk["failed"]
    await rig.aclose()  # no exception escapes
    assert disk["failed"] == failed  # nothing more was attempted after the error
    disk["full"] = False
    rec = load_recording(d)  # what was written before is readable
    assert rec.events[0].type == "recording_started"


async def test_permission_error_at_start_raises_a_readable_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    rig = Rig(blocker / "recordings")
    with pytest.raises(RecordingError, match=r"cannot create a recording in .*not-a-dir"):
        await rig.rec.start()
    await rig.session.aclose()


async def test_a_disk_stall_drops_audio_and_notes_the_gap(
    tmp_path: Path, disk: dict[str, Any]
) -> None:
    rig = Rig(tmp_path, max_queue_seconds=1.0)
    d = await rig.start()
    await asyncio.sleep(0.5)
    disk["stall"].clear()
    await asyncio.sleep(5)  # the writer is stuck; the conversation is not
    assert [m.role for m in rig.session.history.messages()][:1] == ["user"]
    disk["stall"].set()
    await asyncio.sleep(4)
    await rig.aclose()
    assert rig.errors == [] and rig.rec.gap_seconds > 1.0
    rec = load_recording(d)
    gaps = rec.of("recording_gap")
    assert gaps and sum(g.event["duration"] for g in gaps) == pytest.approx(
        rig.rec.gap_seconds, abs=0.01
    )
    assert len(rec.audio) / RATE == pytest.approx(9.5, abs=0.05)  # the timeline has no holes
    assert [t.user for t in rec.turns] == ["weather in paris", "stop please"]


async def test_runtime_events_and_mode_switch_keep_one_recording(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    d = await rig.start()
    rig.rec.record_event(ModeChanged(mode="local", description="LOCAL mic: fake"))
    await asyncio.sleep(9)
    # switch: new devices, same recording
    mic2 = FakeAudioInput([Utterance(0.8, silence_before=0.3, transcript="are you there")])
    out2 = FakeAudioOutput()
    rig.session.input.audio = rig.rec.wrap_input(mic2)
    rig.session.output.audio = rig.rec.wrap_output(out2)
    assert isinstance(rig.session.input.audio, RecordingAudioInput)
    assert rig.rec.wrap_output(out2) is rig.session.output.audio  # idempotent
    rig.rec.record_event(ModeChanged(mode="room", description="ROOM r@wss://example"))
    call = FunctionCall(call_id="c1", name="get_weather", arguments='{"city": "Oslo"}')
    rig.rec.record_event(
        ToolRerun(
            execution=ToolExecution(
                call=call,
                output=FunctionCallOutput(call_id="c1", output="rainy", is_error=False),
                duration=0.1,
            )
        )
    )
    rig.rec.record_event(
        AudioLevels(input_dbfs=-20, input_peak_dbfs=-14, output_dbfs=-60, output_peak_dbfs=-54)
    )  # skipped by default
    await asyncio.sleep(4)
    await rig.aclose()
    await out2.aclose()
    rec = load_recording(d)
    assert [e.event["description"] for e in rec.of("mode_changed")] == [
        "LOCAL mic: fake",
        "ROOM r@wss://example",
    ]
    assert rec.of("tool_rerun")[0].event["execution"]["output"]["output"] == "rainy"
    assert not rec.of("levels")
    assert [t.user for t in rec.turns] == ["weather in paris", "stop please", "are you there"]
    agent = active_regions(rec.agent_audio, RATE)
    starts = rec.of("audio_playback_started")
    assert len(agent) == len(starts) == 3 and agent[2][0] == pytest.approx(starts[2].t, abs=FRAME)
    assert active_regions(rec.user_audio, RATE)[-1][0] == pytest.approx(9.0 + 0.3, abs=0.02)
    assert "**Mode:** ROOM r@wss://example" in (d / "transcript.md").read_text()
    # stop() left inert wrappers: the session still works, a new recording adopts them
    assert isinstance(rig.session.output.audio, RecordingAudioOutput)


async def test_a_second_recording_adopts_the_wrappers_and_detach_restores(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    await rig.start()
    await asyncio.sleep(3)
    await rig.rec.stop()
    wrapped_in = rig.session.input.audio
    rec2 = Recorder(tmp_path, session=rig.session, sample_rate=RATE)
    d2 = await rec2.start()
    rec2.attach()
    assert rig.session.input.audio is wrapped_in  # adopted: not swapped (no restart)
    await asyncio.sleep(6)
    rec2.detach()
    assert rig.session.input.audio is rig.mic and rig.session.output.audio is rig.out
    await rec2.stop()
    await rig.session.aclose()
    await rig.out.aclose()
    rec = load_recording(d2)
    assert [t.user for t in rec.turns if t.user] == ["stop please"]
    assert rec.turns[0].replies  # the end of the reply that was playing
    assert active_regions(rec.user_audio, RATE)  # heard through the adopted wrapper


async def test_pause_and_resume_place_audio_where_it_was_heard(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.mic = FakeAudioInput([])
    await rig.start()
    handle = rig.session.say("Hello there, this is a message that goes on for a while.")
    await asyncio.sleep(1.0)
    out = rig.session.output.audio
    assert out is not None
    out.pause()
    await asyncio.sleep(1.0)
    out.resume()
    await handle
    await asyncio.sleep(0.5)
    d = rig.rec.directory
    await rig.aclose()
    assert d is not None
    rec = load_recording(d)
    agent = active_regions(rec.agent_audio, RATE)
    (start,) = rec.of("audio_playback_started")
    (fin,) = rec.of("audio_playback_finished")
    assert len(agent) == 2  # the pause is silence
    assert agent[0][0] == pytest.approx(start.t, abs=FRAME)
    assert agent[1][0] - agent[0][1] == pytest.approx(1.0, abs=0.02)
    played = sum(b - a for a, b in agent)
    assert played == pytest.approx(fin.event["playback_position"], abs=0.02)


def test_record_event_before_the_start_is_ignored(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, session=AgentSession())
    rec.record_event(Notice(level="info", message="too early"))
    assert rec.directory is None


async def test_a_swap_without_wrapping_is_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rig = Rig(tmp_path)
    await rig.start()
    await asyncio.sleep(0.5)
    rig.session.output.audio = FakeAudioOutput()  # the runtime forgot rec.wrap_output
    await asyncio.sleep(0.5)
    assert sum("without Recorder.wrap_input" in r.getMessage() for r in caplog.records) == 1
    out = rig.session.output.audio
    await rig.aclose()
    await out.aclose()  # type: ignore[union-attr]


async def test_stop_gives_up_on_a_hung_disk(tmp_path: Path, disk: dict[str, Any]) -> None:
    rig = Rig(tmp_path, stop_timeout=0.2)
    await rig.start()
    await asyncio.sleep(1)
    disk["stall"].clear()
    await asyncio.sleep(1)
    await rig.aclose()  # returns although the writer is stuck
    assert len(rig.errors) == 1 and "did not finish writing" in rig.errors[0]
    assert rig.rec.writer is not None and rig.rec.writer.alive
    disk["stall"].set()
    await asyncio.get_running_loop().run_in_executor(None, rig.rec.writer.join, 30)
    assert not rig.rec.writer.alive


async def test_inert_wrappers_let_a_recording_start_mid_session_without_a_swap(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path)
    inp, out = RecordingAudioInput(rig.mic), RecordingAudioOutput(rig.out)
    rig.session.input.audio, rig.session.output.audio = inp, out  # how the runtime runs
    mic_start = asyncio.get_running_loop().time()
    await rig.session.start(WeatherAgent())
    await asyncio.sleep(3.0)  # the first turn, not recorded
    d = await rig.rec.start()
    rig.rec.attach()
    assert rig.session.input.audio is inp and rig.session.output.audio is out  # adopted
    await asyncio.sleep(6.0)
    await rig.aclose()
    assert rig.session.input.audio is inp and inp.sink is rig.rec
    rec = load_recording(d)
    # the scripted mic was not restarted: its second utterance only, at its scripted time
    assert [t.user for t in rec.turns if t.user] == ["stop please"]
    (onset, _), *_ = active_regions(rec.user_audio, RATE)
    speaking = next(e for e in rec.of("user_state_changed") if e.event["new_state"] == "speaking")
    assert speaking.t - onset == pytest.approx(0.05, abs=FRAME)  # FakeVAD's min_speech_duration
    # ... 4 s after the mic started (the session's start takes a little loop time)
    assert onset - rig.rec.rel(mic_start) == pytest.approx(4.0, abs=0.03)
    # the reply that was playing when the recording started is not written (where its audio
    # belongs is unknown); the next one is, where it was heard
    (start,) = [e for e in rec.of("audio_playback_started")]
    (agent,) = active_regions(rec.agent_audio, RATE)
    assert agent[0] == pytest.approx(start.t, abs=FRAME)
    assert len(rec.of("audio_playback_finished")) == 2
