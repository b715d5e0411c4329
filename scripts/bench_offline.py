"""End-to-end latency of spoken turns with the embedded offline stack.

espeak-ng speaks a question into a scripted microphone (paced in real time); the session runs
Silero VAD → Whisper tiny.en → Qwen2.5-0.5B (llama.cpp) → Piper and "plays" the reply on a
real-time fake speaker. Per turn it reports, from the session's own events and metrics:

  vad_eos   end of the user's voice → the VAD's end of speech (includes its silence window)
  stt       end of the user's voice → final transcript (transcription_delay)
  eou       end of the user's voice → turn committed (end_of_utterance_delay)
  llm_ttft  LLM time to first token     tts_ttfb  TTS time to first audio (first sentence)
  e2e       end of the user's voice → first agent audio frame played

and the median over the turns. Run: .venv/bin/python scripts/bench_offline.py [--turns N]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import soxr
from livekit import rtc

from voicetui.agents import Agent, AgentSession
from voicetui.agents.audio import make_frame, silence
from voicetui.agents.testing import FakeAudioOutput
from voicetui.agents.voice.io import AudioInput
from voicetui.plugins.prewarm import LoadProgress, prewarm_models
from voicetui.plugins.selection import ModelSelection, build_models, check_requirements, resolve

QUESTIONS = [
    "What is the capital of France?",
    "How many days are there in a week?",
    "What color is the sky on a clear day?",
    "Can you recommend a good book?",
    "What is the largest planet in our solar system?",
    "How do I boil an egg?",
    "What is the opposite of hot?",
]
RATE = 16000
STEP = 0.01


def espeak(text: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "q.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(path), text], check=True)
        with wave.open(str(path)) as w:
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
            rate = w.getframerate()
    audio = soxr.resample(pcm.astype(np.float32) / 32768, rate, RATE)
    loud = np.nonzero(np.abs(audio) > 0.01)[0]
    audio = audio[loud[0] : loud[-1] + 1]  # espeak's own leading/trailing silence
    return (np.clip(audio, -1, 1) * 32767).astype(np.int16)


class ScriptedMic(AudioInput):
    """Silence, and each queued utterance in real time; remembers when each voice ended."""

    def __init__(self) -> None:
        super().__init__(label="ScriptedMic")
        self.queue: asyncio.Queue[np.ndarray] = asyncio.Queue()
        self.voice_ended_at: list[float] = []

    def __aiter__(self) -> AsyncIterator[rtc.AudioFrame]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[rtc.AudioFrame]:
        loop = asyncio.get_running_loop()
        n = int(RATE * STEP)
        start = loop.time()
        sent = 0

        async def pace() -> None:
            nonlocal sent
            sent += 1
            delay = start + sent * STEP - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)

        while True:
            if self.queue.empty():
                await pace()
                yield silence(STEP, RATE)
                continue
            pcm = self.queue.get_nowait()
            for i in range(0, len(pcm), n):
                chunk = pcm[i : i + n]
                if len(chunk) < n:
                    chunk = np.pad(chunk, (0, n - len(chunk)))
                await pace()
                yield make_frame(chunk, RATE)
            self.voice_ended_at.append(loop.time())


async def run(turns: int) -> None:
    resolved = resolve(ModelSelection(stt="local", llm="local", tts="local", vad="silero"), env={})
    problems = check_requirements(resolved)
    if problems:
        sys.exit("cannot run the offline stack:\n  " + "\n  ".join(problems))
    models = build_models(resolved)
    agent = Agent(instructions="You are a voice assistant. Answer in one short spoken sentence.")

    def show(p: LoadProgress) -> None:
        if p.stage in ("ready", "failed"):
            print(f"  {p.kind:>3} {p.stage:<6} {p.elapsed:5.1f} s  {p.label} {p.message}")

    print("loading models:")
    t0 = time.perf_counter()
    errors = await prewarm_models(models, instructions=agent.instructions, on_progress=show)
    if errors:
        sys.exit("\n".join(errors))
    print(f"  all loaded in {time.perf_counter() - t0:.1f} s\n")

    session: AgentSession[None] = AgentSession(**models.as_kwargs())
    mic = ScriptedMic()
    out = FakeAudioOutput()
    session.input.audio = mic
    session.output.audio = out
    loop = asyncio.get_running_loop()
    vad_eos: list[float] = []
    metrics: list[Any] = []
    replies: list[Any] = []
    reply_done = asyncio.Event()
    session.on(
        "user_state_changed",
        lambda ev: vad_eos.append(loop.time()) if ev.new_state == "listening" else None,
    )
    session.on("metrics_collected", lambda ev: metrics.append(ev.metrics))
    listening = asyncio.Event()

    def on_state(ev: Any) -> None:
        if ev.new_state == "listening":
            listening.set()
        else:
            listening.clear()

    session.on("agent_state_changed", on_state)

    def on_item(ev: Any) -> None:
        if getattr(ev.item, "role", None) == "assistant":
            replies.append(ev.item)
            reply_done.set()

    session.on("conversation_item_added", on_item)
    await session.start(agent)

    rows: list[dict[str, float]] = []
    header = f"{'turn':>4} {'vad_eos':>8} {'stt':>6} {'eou':>6} {'llm_ttft':>8} {'tts_ttfb':>8} {'e2e':>6}  reply"
    print(header)
    print("-" * len(header))
    for i in range(turns):
        question = QUESTIONS[i % len(QUESTIONS)]
        reply_done.clear()
        first_metric = len(metrics)
        first_eos = len(vad_eos)
        await mic.queue.put(espeak(question))
        try:
            await asyncio.wait_for(reply_done.wait(), 60)
        except TimeoutError:
            print(f"{i + 1:>4} no reply within 60 s to {question!r}")
            continue
        await asyncio.sleep(0.5)  # let the playout and metrics settle
        voice_end = mic.voice_ended_at[-1]
        turn_metrics = metrics[first_metric:]
        eou = next((m for m in turn_metrics if m.type == "eou_metrics"), None)
        llm = next((m for m in turn_metrics if m.type == "llm_metrics"), None)
        tts = next((m for m in turn_metrics if m.type == "tts_metrics"), None)
        reply = replies[-1]
        row = {
            "vad_eos": (vad_eos[first_eos] - voice_end)
            if len(vad_eos) > first_eos
            else float("nan"),
            "stt": eou.transcription_delay if eou else float("nan"),
            "eou": eou.end_of_utterance_delay if eou else float("nan"),
            "llm_ttft": llm.ttft if llm else float("nan"),
            "tts_ttfb": tts.ttfb if tts else float("nan"),
            "e2e": reply.metrics.e2e_latency or float("nan"),
        }
        rows.append(row)
        print(
            f"{i + 1:>4} {row['vad_eos']:8.3f} {row['stt']:6.3f} {row['eou']:6.3f} "
            f"{row['llm_ttft']:8.3f} {row['tts_ttfb']:8.3f} {row['e2e']:6.3f}  "
            f"{(reply.text_content or '')[:60]!r}"
        )
        if session.agent_state != "listening":
            await listening.wait()
    if rows:
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        print("-" * len(header))
        print(
            f"{'med':>4} {med['vad_eos']:8.3f} {med['stt']:6.3f} {med['eou']:6.3f} "
            f"{med['llm_ttft']:8.3f} {med['tts_ttfb']:8.3f} {med['e2e']:6.3f}"
        )
    await session.aclose()
    await out.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=5)
    args = parser.parse_args()
    if shutil.which("espeak-ng") is None:
        sys.exit("espeak-ng is needed: ./scripts/system_deps.sh")
    asyncio.run(run(args.turns))


if __name__ == "__main__":
    main()
