"""Latency saved by preemptive generation, with fakes of known timing.

One user turn (1 s of speech), then the agent's reply, with ``preemptive_generation`` off and
on, side by side in one run. The user-perceived latency is the e2e_latency of the reply (end
of the user's voice → first audio frame heard), as reported by the session itself.

    .venv/bin/python scripts/bench_preemptive.py            # real time, 3 turns per cell
    .venv/bin/python scripts/bench_preemptive.py --virtual  # virtual clock: exact, instant

With preemption the LLM (and TTS) start at the final transcript instead of at the end of the
endpointing delay: the saving is min_endpointing_delay - stt_delay, capped by the time the
LLM and TTS need to produce the first audio."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from dataclasses import dataclass

from voicetui.agents import Agent, AgentSession
from voicetui.agents.testing import (
    FakeAudioInput,
    FakeAudioOutput,
    FakeLLM,
    FakeLLMResponse,
    FakeSTT,
    FakeTTS,
    FakeVAD,
    Utterance,
)


@dataclass(frozen=True)
class Cell:
    stt_delay: float
    llm_ttft: float
    tts_ttfb: float
    endpointing: float


async def one_turn(cell: Cell, preemptive: bool) -> float:
    llm = FakeLLM([FakeLLMResponse(content="It is noon.", ttft=cell.llm_ttft)])
    session: AgentSession[None] = AgentSession(
        vad=FakeVAD(),
        stt=FakeSTT(final_delay=cell.stt_delay),
        llm=llm,
        tts=FakeTTS(ttfb=cell.tts_ttfb),
        min_endpointing_delay=cell.endpointing,
        preemptive_generation=preemptive,
    )
    out = FakeAudioOutput()
    session.input.audio = FakeAudioInput(
        [Utterance(1.0, silence_before=0.3, transcript="what time is it")]
    )
    session.output.audio = out
    done = asyncio.Event()
    e2e: list[float] = []

    def on_item(ev: object) -> None:
        item = getattr(ev, "item", None)
        if getattr(item, "role", None) == "assistant":
            e2e.append(item.metrics.e2e_latency or float("nan"))  # type: ignore[union-attr]
            done.set()

    session.on("conversation_item_added", on_item)
    await session.start(Agent(instructions="Tell the time."))
    try:
        await asyncio.wait_for(done.wait(), 30)
    finally:
        await session.aclose()
        await out.aclose()
    return e2e[0]


def run(coro_factory: object, virtual: bool) -> float:
    if virtual:
        import looptime

        loop = looptime.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro_factory())  # type: ignore[operator]
    finally:
        loop.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--virtual", action="store_true", help="use a virtual clock (looptime)")
    parser.add_argument("--repeat", type=int, default=3, help="turns per cell (real time)")
    args = parser.parse_args()
    repeat = 1 if args.virtual else args.repeat
    cells = [
        Cell(stt_delay=0.2, llm_ttft=0.3, tts_ttfb=0.2, endpointing=0.5),
        Cell(stt_delay=0.2, llm_ttft=0.8, tts_ttfb=0.2, endpointing=0.5),
        Cell(stt_delay=0.1, llm_ttft=0.5, tts_ttfb=0.3, endpointing=1.0),
    ]
    clock = "virtual" if args.virtual else "real"
    print(f"e2e latency per turn ({clock} clock, median of {repeat}), seconds")
    header = f"{'stt':>5} {'ttft':>5} {'ttfb':>5} {'endp':>5} | {'off':>6} {'on':>6} {'saved':>6} {'on/off':>7}"
    print(header)
    print("-" * len(header))
    started = time.perf_counter()
    for c in cells:
        results: dict[bool, float] = {}
        for preemptive in (False, True):
            samples = [
                run(lambda c=c, p=preemptive: one_turn(c, p), args.virtual) for _ in range(repeat)
            ]
            results[preemptive] = statistics.median(samples)
        off, on = results[False], results[True]
        print(
            f"{c.stt_delay:5.2f} {c.llm_ttft:5.2f} {c.tts_ttfb:5.2f} {c.endpointing:5.2f} | "
            f"{off:6.3f} {on:6.3f} {off - on:6.3f} {on / off:7.2f}"
        )
    print(f"(ran in {time.perf_counter() - started:.1f} s of wall time)")


if __name__ == "__main__":
    main()
