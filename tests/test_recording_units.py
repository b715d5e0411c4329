"""The recording's building blocks: the audio timeline and tracks, the writer's queue, secret
masking, the transcript format, JSON conversion of events."""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import os
import wave
from pathlib import Path

import numpy as np
import pytest

from tests.transcript_md import parse_transcript
from voicetui.recording.repair import read_wav
from voicetui.recording.secrets import MASK, SecretMasker, is_secret_key
from voicetui.recording.session_info import to_jsonable
from voicetui.recording.transcript import TranscriptRenderer, fmt_time
from voicetui.recording.wav_writer import Timeline, Track, WavFile
from voicetui.recording.writer import EventLine, Tick, UserAudio, WriteQueue
from voicetui.runtime.api import ModeChanged, RoomDetails

RATE = 24000


def tone(seconds: float, rate: int, freq: float = 300.0, amp: int = 10000) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (np.sin(2 * np.pi * freq * t) * amp).astype(np.int16)


def timeline(tmp_path: Path, window: float = 30.0) -> tuple[Timeline, list[WavFile]]:
    files = [
        WavFile(str(tmp_path / "audio.wav"), sample_rate=RATE, channels=2),
        WavFile(str(tmp_path / "user.wav"), sample_rate=RATE, channels=1),
        WavFile(str(tmp_path / "agent.wav"), sample_rate=RATE, channels=1),
    ]
    return Timeline(files, sample_rate=RATE, window_seconds=window), files


def onset(x: np.ndarray, thr: int = 500) -> int:
    return int(np.flatnonzero(np.abs(x.astype(np.int32)) > thr)[0])


def feed_user(track: Track, pcm: np.ndarray, rate: int, arrivals: list[float], tol: int) -> None:
    n = rate // 100
    for i, t in enumerate(arrivals):
        chunk = pcm[i * n : (i + 1) * n]
        pos = round(t * RATE) - round(len(chunk) * RATE / rate)
        track.write(pos, chunk, rate, tolerance=tol, overwrite=False)


def test_resampled_frames_are_placed_contiguously_at_their_time(tmp_path: Path) -> None:
    tl, files = timeline(tmp_path)
    track = Track(tl, 0)
    pcm = np.concatenate([np.zeros(8000, np.int16), tone(1.0, 16000)])  # voice from 0.5 s
    arrivals = [2.0 + (i + 1) * 0.01 for i in range(len(pcm) // 160)]
    feed_user(track, pcm, 16000, arrivals, tol=round(0.08 * RATE))
    track.finish()
    tl.flush()
    for f in files:
        f.close()
    audio, rate = read_wav(tmp_path / "audio.wav")
    assert rate == RATE and len(audio) == round(3.5 * RATE)
    assert onset(audio[:, 0]) == pytest.approx(2.5 * RATE, abs=2)
    assert not audio[:, 1].any()
    user, _ = read_wav(tmp_path / "user.wav")
    assert np.array_equal(user[:, 0], audio[:, 0])
    with wave.open(str(tmp_path / "agent.wav")) as w:
        assert w.getnframes() == len(audio)


def test_jitter_is_absorbed_and_a_late_source_catches_up_only_in_silence(tmp_path: Path) -> None:
    tl, _ = timeline(tmp_path)
    track = Track(tl, 0)
    tol, hard = round(0.08 * RATE), RATE
    voice = tone(1.0, RATE)
    # a source 20% slower than the clock, voiced: written back to back (no hole in speech)
    arrivals = [(i + 1) * 0.012 for i in range(100)]
    for i, t in enumerate(arrivals):
        chunk = voice[i * 240 : (i + 1) * 240]
        track.write(round(t * RATE) - 240, chunk, RATE, tolerance=hard, overwrite=False)
    assert track.runs == [(48, RATE)]  # one run: contiguous although 0.2 s late by the end
    # then silence arrives, late: the track catches up with the clock
    quiet = np.zeros(240, np.int16)
    track.write(round(1.3 * RATE) - 240, quiet, RATE, tolerance=tol, overwrite=False)
    assert len(track.runs) == 2 and track.runs[1][0] == round(1.3 * RATE) - 240


def test_a_source_ahead_of_the_clock_never_overwrites_itself(tmp_path: Path) -> None:
    tl, _ = timeline(tmp_path)
    track = Track(tl, 0)
    for _ in range(50):  # fed as fast as possible: all "arrive" at t = 0.5
        track.write(round(0.5 * RATE) - 240, tone(0.01, RATE), RATE, tolerance=1, overwrite=False)
    assert track.end == round(0.5 * RATE) - 240 + 50 * 240


def test_long_recordings_slide_the_window_and_late_audio_is_clipped(tmp_path: Path) -> None:
    tl, files = timeline(tmp_path, window=1.0)
    track = Track(tl, 1)
    chunk = tone(0.25, RATE)
    for i in range(40):  # 10 s through a 1 s window
        track.write(i * len(chunk), chunk, RATE, tolerance=2, overwrite=True)
        tl.extend((i + 1) * len(chunk))
    tl.put(1, 0, chunk)  # far too late: out of the window
    assert tl.clipped == len(chunk)
    tl.flush()
    for f in files:
        f.close()
    audio, _ = read_wav(tmp_path / "agent.wav")
    assert np.array_equal(audio[:, 0], np.tile(chunk, 40))


def test_truncating_a_segment_silences_what_was_not_played(tmp_path: Path) -> None:
    tl, files = timeline(tmp_path)
    track = Track(tl, 1)
    track.reset_runs()
    track.write(1000, tone(0.5, 16000), 16000, tolerance=2, overwrite=True, restart=True)
    track.finish()
    written = track.runs[0][1]
    assert written == pytest.approx(0.5 * RATE, abs=2)
    track.truncate_runs(round(0.2 * RATE))
    tl.flush()
    for f in files:
        f.close()
    agent = read_wav(tmp_path / "agent.wav")[0][:, 0]
    assert agent[1000 + round(0.2 * RATE) :].max() == 0
    assert np.abs(agent[1000 : 1000 + round(0.2 * RATE)]).max() > 5000


def test_write_queue_bounds_audio_and_events_but_never_control() -> None:
    q = WriteQueue(max_audio_seconds=1.0, max_events=2)
    pcm = np.zeros(10, np.int16)
    assert q.put_audio(UserAudio(0.0, pcm, RATE), 0.6)
    assert not q.put_audio(UserAudio(0.0, pcm, RATE), 0.6)  # full: dropped
    assert q.put_event(EventLine(0, 0, "a", {})) and q.put_event(EventLine(0, 0, "b", {}))
    assert not q.put_event(EventLine(0, 0, "c", {}))
    assert q.put_event(EventLine(0, 0, "d", {}), force=True)
    q.put_control(Tick(1.0))
    q.put_control(Tick(2.0))  # merged with the previous tick
    items = [q.get(0) for _ in range(6)]
    assert [type(i).__name__ for i in items[:5]] == [
        "UserAudio",
        "EventLine",
        "EventLine",
        "EventLine",
        "Tick",
    ]
    assert isinstance(items[4], Tick) and items[4].t == 2.0 and items[5] is None
    assert q.put_audio(UserAudio(0.0, pcm, RATE), 0.9)  # space again


def test_secret_masker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_SERVICE_TOKEN", "env-token-value-123")
    m = SecretMasker(["registered-value"])
    assert not m.add("ab")  # too short to mask safely
    text = (
        "key sk-abcdefghijklmnop1234 jwt eyJhbGciOiJIUzI1.eyJzdWIiOiIxMjM0.SflKxwRJSMeKKF2QT4 "
        "Authorization: Bearer abcdefgh12345678 url wss://h/?token=zzzzzzzz&x=1 "
        "api_key: qwertyuiop registered-value env-token-value-123"
    )
    masked = m.mask_text(text)
    for s in ("sk-abcdefghijklmnop1234", "SflKxwRJSMeKKF2QT4", "abcdefgh12345678", "zzzzzzzz",
              "qwertyuiop", "registered-value", "env-token-value-123"):  # fmt: skip
        assert s not in masked, s
    assert "&x=1" in masked and "wss://h/?token=" in masked
    data = {
        "api_key": "k-123456789",
        "nested": [{"LIVEKIT_API_SECRET": "lk-secret-xyz"}],
        "completion_tokens": 12,
        "tokens_per_second": 3.5,
        "arguments": json.dumps({"password": "pw-abcdef", "city": "Paris"}),
        "text": "uses k-123456789",
    }
    m.harvest(data)
    out = m.mask(data)
    assert out["api_key"] == MASK and out["nested"][0]["LIVEKIT_API_SECRET"] == MASK
    assert out["completion_tokens"] == 12 and out["tokens_per_second"] == 3.5
    assert json.loads(out["arguments"]) == {"password": MASK, "city": "Paris"}
    assert out["text"] == f"uses {MASK}"  # the harvested value is masked everywhere
    assert is_secret_key("OPENAI_API_KEY") and not is_secret_key("prompt_tokens")

    class Client:
        def __init__(self) -> None:
            self.config = dataclasses.make_dataclass("C", ["api_key"])("obj-held-key-99")

    m.scan_object(Client())
    assert m.mask_text("x obj-held-key-99") == f"x {MASK}"


def test_paths_are_never_masked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Run from inside a project folder (PWD, OLDPWD are set): paths stay readable; a real
    secret that shares characters with a path is masked alone."""
    project = tmp_path / "my-agent-project"
    monkeypatch.setenv("PWD", str(project))
    monkeypatch.setenv("OLDPWD", str(tmp_path))
    monkeypatch.setenv("DB_PWD", "hunter2-agent")  # a password named like one
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(project / "creds.json"))
    m = SecretMasker()
    text = f'{{"agent": "{project}/my_agent.py", "record_dir": "{project}/rec", "pw": "hunter2-agent"}}'
    masked = m.mask_text(text)
    assert f"{project}/my_agent.py" in masked and f"{project}/rec" in masked
    assert "hunter2-agent" not in masked
    assert m.mask({"agent": f"{project}/my_agent.py"}) == {"agent": f"{project}/my_agent.py"}
    assert is_secret_key("DB_PWD") and not is_secret_key("PWD")


def test_transcript_renders_for_humans() -> None:
    r = TranscriptRenderer()
    md = r.header({"id": "rec1", "started_at": "now", "models": {"llm": {"model": "m"}}})
    md += r.render(
        1.5,
        "conversation_item_added",
        {"item": {"type": "message", "role": "user", "content": ["two\nlines"]}},
    )
    md += r.render(
        2.25,
        "function_tools_executed",
        {
            "executions": [
                {
                    "call": {"call_id": "c1", "name": "f", "arguments": '{"a":"`tick`"}'},
                    "output": {"call_id": "c1", "output": "ok", "is_error": True},
                    "duration": 0.5,
                    "mocked": True,
                }
            ],
            "speech_id": "speech_1",
        },
    )
    md += r.render(
        65.0,
        "conversation_item_added",
        {
            "item": {
                "type": "message",
                "role": "assistant",
                "content": ["Hi."],
                "interrupted": True,
                "metrics": {"e2e_latency": 1.234, "llm_node_ttft": 0.5, "tts_node_ttfb": None},
            }
        },
    )
    md += r.render(70.0, "mode_changed", {"mode": "room", "description": "ROOM x"})
    md += r.render(71.0, "unknown_event", {})
    entries = parse_transcript(md + "- `01:1")  # a torn last line is skipped
    assert [(e.who, e.t) for e in entries] == [
        ("User", 1.5),
        ("Tool call", 2.25),
        ("Agent (interrupted)", 65.0),
        ("Mode", 70.0),
    ]
    assert entries[0].text == "two\nlines"
    assert (
        '`` f({"a": "`tick`"}) ``' in entries[1].text and "error, mocked, 0.50 s" in entries[1].text
    )
    assert entries[2].latency == {"e2e": 1.23, "LLM TTFT": 0.5}
    assert fmt_time(3725.5) == "1:02:05.50"


def test_to_jsonable_handles_runtime_and_odd_objects() -> None:
    class Color(enum.Enum):
        RED = "red"

    data = to_jsonable(
        {
            "mode": ModeChanged(mode="room", description="d"),
            "room": RoomDetails(url="u", room="r"),
            "nan": math.nan,
            "enum": Color.RED,
            "bytes": b"abc",
            "path": Path("/x"),
            "np": np.float32(1.5),
            "set": {1},
            "obj": object(),
        }
    )
    json.dumps(data)
    assert data["mode"] == {"mode": "room", "description": "d", "type": "mode_changed"}
    assert data["nan"] == "nan" and data["enum"] == "red" and data["bytes"] == "<3 bytes>"
    assert data["np"] == 1.5 and data["set"] == [1] and data["obj"].startswith("<object")


def test_wav_files_are_created_owner_only(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        f = WavFile(str(tmp_path / "a.wav"), sample_rate=RATE, channels=1)
    finally:
        os.umask(old)
    f.write_at(10, b"\x01\x00" * 5)
    f.commit(15)
    f.close()
    assert (os.stat(tmp_path / "a.wav").st_mode & 0o777) == 0o600
    with wave.open(str(tmp_path / "a.wav")) as w:
        assert w.getnframes() == 15 and w.readframes(15)[20:22] == b"\x01\x00"


def test_a_frame_that_began_before_the_recording_does_not_shift_the_track(tmp_path: Path) -> None:
    tl, files = timeline(tmp_path)
    track = Track(tl, 0)
    pcm = np.concatenate([np.zeros(240, np.int16), tone(0.5, RATE)])
    # the first frame arrives at t = 0: it covers [-0.01, 0] (clipped), the voice starts at 0
    feed_user(track, pcm, RATE, [i * 0.01 for i in range(len(pcm) // 240)], tol=1920)
    tl.flush()
    for f in files:
        f.close()
    user = read_wav(tmp_path / "user.wav")[0][:, 0]
    assert onset(user) == 1 and tl.clipped == 240  # (a sine starts at 0)
