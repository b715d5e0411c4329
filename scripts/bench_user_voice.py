"""How well Whisper tiny.en hears the eval's user voices (docs/benchmarks.md, issue 15, "Spoken,
second round"): each sentence synthesized by a voice, decoded on the app's 10 s window, then
scored by word error rate and by whether the default agent's router picks other tools for the
transcript than for the true sentence.

    PYTHONPATH=. .venv/bin/python scripts/bench_user_voice.py --set suite --voices espeak160,piper
    PYTHONPATH=. .venv/bin/python scripts/bench_user_voice.py --set heldout --beam 5 --show

``--set suite``: the text turns of examples/evals/default_agent.yaml; ``heldout``: 50 other
sentences of the same domains (below), not in the suite. Piper needs the ``piper`` extra.
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from voicetui.default_agent.router import route
from voicetui.evals.source import load_suite
from voicetui.evals.speech import espeak, piper
from voicetui.plugins.local import whisper_stt

SUITE = Path(__file__).resolve().parent.parent / "examples" / "evals" / "default_agent.yaml"
HELDOUT = """\
What time is it right now?|Can you tell me the time?|What's today's date?|What day is it tomorrow?|
What time is it in Chicago?|What's the time in Madrid?|Tell me the date in Singapore.|
Is it night in Hong Kong?|What is 37 times 12?|What's 250 plus 175?|What is 81 divided by 9?|
What's 3 to the power of 4?|What is the square root of 225?|What's 500 minus 123?|
What is 25 percent of 320?|What's a 18 percent tip on 70 dollars?|How many minutes are in 4 hours?|
How many days are in 6 weeks?|How many seconds are in a day?|Set a timer for 15 minutes.|
Start a timer for 30 seconds.|Set a 7 minute timer for the rice.|Set an alarm for 20 minutes.|
How much time is left on my timer?|Which timers do I have?|Stop the rice timer.|
Cancel all my timers.|Remember that my wifi password is on the fridge.|
Remember that the meeting is on Thursday.|What did I tell you about the meeting?|
Do you remember my wifi password?|Make a note to water the plants.|What notes do I have?|
What is 6 times 7 and what time is it?|Who discovered penicillin?|
How far is the moon from the earth?|What's the boiling point of water?|Good morning!|
How's it going?|Thanks a lot.|Tell me something funny.|Can you order a pizza for me?|
Call my sister.|Play some jazz music.|What's the weather in Boston?|
Turn off the lights in the kitchen.|What about Rome?|And in Moscow?|What is 64 divided by 8?|
What's 12 percent of 75?"""

VOICES: dict[str, Callable[[str], np.ndarray]] = {
    "espeak160": lambda t: espeak(t),
    "espeak130": lambda t: espeak(t, words_per_minute=130),
    "espeak-m3-140": lambda t: espeak(t, voice="en-us+m3", words_per_minute=140),
    "espeak-gb": lambda t: espeak(t, voice="en-gb", words_per_minute=150),
    "piper": piper,
}
_NUMBER_WORDS = {
    w: str(i)
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve".split()
    )
}


def sentences(which: str) -> list[str]:
    if which == "heldout":
        return [s.strip() for s in HELDOUT.replace("\n", "").split("|") if s.strip()]
    return [t.say for loaded in load_suite(SUITE) for t in loaded.scenario.turns if t.say]


def words(text: str) -> list[str]:
    """Lower case, "%" and "$" as words, "1,234" as "1234", "two" as "2"."""
    s = text.casefold().replace("’", "'").replace("%", " percent").replace("$", "")
    s = re.sub(r"(\d),(\d)", r"\1\2", s)
    s = re.sub(r"\b[a-z]+\b", lambda m: _NUMBER_WORDS.get(m.group(0), m.group(0)), s)
    return re.sub(r"[^a-z0-9' ]+", " ", s).split()


def errors(ref: str, hyp: str) -> tuple[int, int]:
    """(word edit distance, reference words)."""
    r, h = words(ref), words(hyp)
    d = list(range(len(h) + 1))
    for i in range(1, len(r) + 1):
        prev, d[0] = d[0], i
        for j in range(1, len(h) + 1):
            cur = d[j]
            d[j] = min(d[j] + 1, d[j - 1] + 1, prev + (r[i - 1] != h[j - 1]))
            prev = cur
    return d[len(h)], len(r)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--voices", default="espeak160,piper", help=",".join(VOICES))
    ap.add_argument("--set", choices=["suite", "heldout"], default="suite")
    ap.add_argument("--beam", type=int, default=1)
    ap.add_argument("--show", action="store_true", help="print every misheard sentence")
    args = ap.parse_args()
    texts = sentences(args.set)
    stt = whisper_stt.WhisperSTT(model="tiny.en", beam_size=args.beam)
    shared = whisper_stt._get_model(stt._key, lambda *_: None)
    decoder = shared.short_decoder(10.0)
    assert decoder is not None
    for voice in args.voices.split(","):
        wrong = total = exact = rerouted = 0
        started = time.perf_counter()
        misheard: list[tuple[str, str, bool]] = []
        for text in texts:
            pcm = VOICES[voice](text).astype(np.float32) / 32768.0
            result = decoder.transcribe(pcm, "en", args.beam)
            if result is not None:
                heard = result.text
            else:  # too long or unsure for the short window: faster-whisper's standard path
                segments, _ = shared.whisper.transcribe(
                    pcm, language="en", beam_size=args.beam, without_timestamps=True
                )
                heard = "".join(s.text for s in segments).strip()
            e, n = errors(text, heard)
            wrong, total, exact = wrong + e, total + n, exact + (e == 0)
            changed = route(text).tools != route(heard).tools
            rerouted += changed
            if e:
                misheard.append((text, heard, changed))
        print(
            f"{voice:14s} beam {args.beam} {args.set}: WER {wrong}/{total} = {wrong / total:.3f}, "
            f"exact {exact}/{len(texts)}, route changed {rerouted}/{len(texts)} "
            f"({time.perf_counter() - started:.0f} s)",
            flush=True,
        )
        if args.show:
            for text, heard, changed in misheard:
                print(f"  {'R' if changed else ' '} {text!r} -> {heard!r}")


if __name__ == "__main__":
    main()
