"""Does an end-of-turn model help? Premature endpoints and added latency, with and without it.

A labelled set of spoken turns, each said by espeak-ng and/or the Piper ``joe`` voice:

  complete   a whole request or answer, then silence: the turn ends here
  hesitant   a fragment ("Can you set a timer for"), a thinking pause, then the rest: a turn
             that ends at the pause is cut off (a premature endpoint)

Each turn goes through Silero VAD (the embedded stack's, default options). At each end of speech
the session's rules decide, as in ``AudioRecognition``:

  silence    (turn_detection="vad") the turn ends ``min_endpointing_delay`` after the voice
  model      Smart Turn hears the turn so far: P(done) ≥ threshold → ``min_endpointing_delay``,
             else the session waits up to ``max_endpointing_delay``

A pause ends the turn when it lasts longer than the delay chosen. Reported per voice:
premature endpoints (of the hesitant turns), turns whose true end was delayed to the longest delay
and the mean delay added at true ends, and the model's inference time.

    .venv/bin/python scripts/bench_turn_detection.py --voices espeak,piper --pause 1.2
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_offline import RATE, espeak, piper

from voicetui.agents.audio import make_frame
from voicetui.agents.vad import VADEventType
from voicetui.plugins.silero import VAD
from voicetui.plugins.smart_turn import SmartTurn

COMPLETE = [
    "What time is it?",
    "Set a timer for ten minutes.",
    "What's the weather like in Paris today?",
    "Remind me to call my mother tomorrow.",
    "How many days are there in a leap year?",
    "Thank you, that's all for now.",
    "Can you tell me a joke?",
    "What is twelve times nine?",
    "Please cancel my timer.",
    "Who wrote Romeo and Juliet?",
    "Turn the volume down a little.",
    "I'd like a table for two at eight.",
    "What did I ask you to remember?",
    "How far is the moon from the earth?",
    "Yes, please do that.",
    "No, that's not what I meant.",
    "Read me my notes.",
    "What's fifteen percent of eighty?",
    "Good morning!",
    "Tell me about the history of Rome.",
]
HESITANT = [
    ("I would like to book a table for", "four people on Friday."),
    ("Can you set a timer for", "twenty minutes?"),
    ("What's the weather going to be like in", "London tomorrow?"),
    ("Remind me to", "buy milk on the way home."),
    ("So I was thinking that maybe we could", "go to the beach."),
    ("The thing is, um,", "I don't remember the password."),
    ("Could you tell me how many", "miles are in a kilometre?"),
    ("My favourite colour is", "blue."),
    ("I need to send an email to", "my boss about the meeting."),
    ("What is the capital of", "Australia?"),
    ("Please add eggs, flour and", "sugar to my list."),
    ("If it rains tomorrow then", "cancel the picnic."),
    ("Take a note that", "the meeting moved to Tuesday."),
    ("How long does it take to", "boil an egg?"),
    ("Let me think, the number is", "four five six."),
    ("And another thing, uh,", "call the dentist."),
    ("I want to know whether", "the shop is open."),
    ("Tell me the time in", "Tokyo, please."),
    ("Can you play some music by", "the Beatles?"),
    ("Well, because", "it was too late."),
]


@dataclass
class Pause:
    at: float
    """Seconds into the turn the VAD said the voice ended (its silence window subtracted)."""
    length: float
    """Seconds until the voice came back (inf: the turn's true end)."""
    probability: float
    infer_ms: float


@dataclass
class Result:
    premature_silence: int = 0
    premature_model: int = 0
    hesitant: int = 0
    ends: int = 0
    late_ends_model: int = 0
    added_model: list[float] = field(default_factory=list)
    infer_ms: list[float] = field(default_factory=list)
    probabilities: dict[str, list[float]] = field(default_factory=dict)


async def pauses_of(audio: np.ndarray, vad: VAD, model: SmartTurn) -> list[Pause]:
    """Every end of speech the VAD reports, with what the model says of the turn up to it."""
    stream = vad.stream()
    step = RATE // 100
    for i in range(0, len(audio) - step + 1, step):
        stream.push_frame(make_frame(audio[i : i + step], RATE))
    stream.end_input()
    ends: list[float] = []
    starts: list[float] = []
    async for ev in stream:
        if ev.type == VADEventType.START_OF_SPEECH:
            starts.append(ev.samples_index / RATE - ev.speech_duration)
        elif ev.type == VADEventType.END_OF_SPEECH:
            ends.append(ev.samples_index / RATE - ev.silence_duration)
    await stream.aclose()
    pauses = []
    for end in ends:
        heard_until = end + vad.opts.min_silence_duration  # when the VAD said so
        t0 = time.perf_counter()
        p = model.predict(audio[: round(heard_until * RATE)], RATE)
        ms = (time.perf_counter() - t0) * 1000
        nxt = [s for s in starts if s > end]
        length = (nxt[0] - end) if nxt else float("inf")
        pauses.append(Pause(end, length, p, ms))
    return pauses


def turn_audio(parts: list[np.ndarray], pause: float) -> np.ndarray:
    lead = np.zeros(RATE // 2, dtype=np.int16)
    gap = np.zeros(round(pause * RATE), dtype=np.int16)
    pieces = [lead]
    for i, p in enumerate(parts):
        if i:
            pieces.append(gap)
        pieces.append(p)
    pieces.append(np.zeros(RATE * 2, dtype=np.int16))
    return np.concatenate(pieces)


async def measure(
    speak: Callable[[str], np.ndarray],
    vad: VAD,
    model: SmartTurn,
    *,
    pause: float,
    min_delay: float,
    max_delay: float,
) -> Result:
    r = Result(probabilities={"complete": [], "fragment": []})
    cases = [([c], False) for c in COMPLETE] + [([a, b], True) for a, b in HESITANT]
    for texts, hesitant in cases:
        audio = turn_audio([speak(t) for t in texts], pause)
        pauses = await pauses_of(audio, vad, model)
        r.infer_ms += [p.infer_ms for p in pauses]
        r.hesitant += hesitant
        cut_silence = cut_model = False
        for p in pauses:
            chosen = min_delay if p.probability >= model.threshold else max_delay
            if p.length == float("inf"):  # the true end
                r.ends += 1
                r.probabilities["complete"].append(p.probability)
                r.added_model.append(chosen - min_delay)
                r.late_ends_model += chosen > min_delay
            else:
                r.probabilities["fragment"].append(p.probability)
                cut_silence |= p.length > min_delay
                cut_model |= p.length > chosen
        r.premature_silence += cut_silence
        r.premature_model += cut_model
    return r


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--voices", default="espeak,piper")
    ap.add_argument("--pause", type=float, default=1.2, help="the thinking pause, seconds")
    ap.add_argument("--min-delay", type=float, default=0.5)
    ap.add_argument("--max-delay", type=float, default=3.0)
    ap.add_argument("--threshold", type=float, default=0.5)
    args = ap.parse_args()
    vad = VAD.load()
    model = SmartTurn(threshold=args.threshold)
    model.prewarm()
    speakers = {"espeak": espeak, "piper": piper}
    print(
        f"pause {args.pause:.1f} s, min_endpointing_delay {args.min_delay:.1f} s, "
        f"max {args.max_delay:.1f} s, threshold {args.threshold:.2f}, model {model.model}"
    )
    print(
        "| voice | premature endpoints: silence | with the model | true ends delayed "
        "| mean added at true ends | P(done) complete / fragment (median) | inference median |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in args.voices.split(","):
        r = await measure(
            speakers[name],
            vad,
            model,
            pause=args.pause,
            min_delay=args.min_delay,
            max_delay=args.max_delay,
        )
        pc = statistics.median(r.probabilities["complete"] or [0])
        pf = statistics.median(r.probabilities["fragment"] or [0])
        print(
            f"| {name} | {r.premature_silence}/{r.hesitant} | {r.premature_model}/{r.hesitant} "
            f"| {r.late_ends_model}/{r.ends} | {statistics.mean(r.added_model):.2f} s "
            f"| {pc:.2f} / {pf:.2f} | {statistics.median(r.infer_ms):.0f} ms |"
        )


if __name__ == "__main__":
    asyncio.run(main())
