"""The configurations ``scripts/bench_offline.py`` compares (``--list`` shows them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Config:
    description: str
    whisper_window: float | None = 10.0
    speculate_after: float | None = 0.1
    preflight: bool = True  # preemptive generation may start on the speculative transcript
    prime_next_turn: bool = True  # LlamaLLM primes the next user turn's header after a reply
    lead_silence: float | None = 0.02  # of the first piece's leading silence (None: all kept)
    first_clause_words: int | None = 4
    first_words: int | None = None
    preemptive: bool = True
    tts: str = "local"  # the embedded Hibari voice; "piper" for Piper
    vad_silence: float | None = None  # None: the Silero plugin's default (0.4 s)
    min_endpointing_delay: float | None = None  # None: the embedded stack's default (0.4 s)
    llm_threads: tuple[int, int] | None = None  # (generation, prompt); None: LlamaLLM's default
    default_agent: bool = False  # the app's DefaultAgent (tools, router, examples), not a plain one
    direct_answers: bool = True  # default agent: a tool result that answers is said without the LLM
    prime_examples: bool = True  # default agent: its made-up examples primed in prewarm


CONFIGS = {
    "default": Config("what voicetui runs now: Hibari voice, preemptive generation"),
    "baseline": Config(
        "before the latency work: Piper, 30 s Whisper window, no speculation, sentence-sized "
        "first TTS chunk, no preemptive generation",
        whisper_window=None,
        speculate_after=None,
        first_clause_words=None,
        preemptive=False,
        tts="piper",
        min_endpointing_delay=0.5,
    ),
    "no-preemptive": Config("default without preemptive generation", preemptive=False),
    "before": Config(
        "the default before issue 21 item 1: no preflight, no header priming, the TTS's "
        "leading silence kept, min endpointing delay 0.5 s",
        preflight=False,
        min_endpointing_delay=0.5,
        prime_next_turn=False,
        lead_silence=None,
    ),
    "no-lead-trim": Config(
        "default, the first piece's leading silence (Hibari ~0.3 s) kept", lead_silence=None
    ),
    "no-preflight": Config(
        "default, the LLM starts on the final transcript (at the VAD's end of speech), not on "
        "the speculative one",
        preflight=False,
    ),
    "no-header-prime": Config(
        "default without priming the next user turn's header after a reply",
        prime_next_turn=False,
    ),
    "clause2": Config("default, the first clause may end after 2 words", first_clause_words=2),
    "first-words3": Config("default, the first 3 words spoken as soon as written", first_words=3),
    "endpoint0.5": Config(
        "default, min endpointing delay 0.5 s (the session's own default)",
        min_endpointing_delay=0.5,
    ),
    "vad0.3": Config("default, VAD silence window 0.3 s", vad_silence=0.3),
    "spec0.05": Config("default, speculate after a 0.05 s pause", speculate_after=0.05),
    "default-agent": Config(
        "default stack with the app's default agent (tools, rules, examples; results that "
        "answer said directly; examples primed)",
        default_agent=True,
    ),
    "default-agent-llm": Config(
        "default agent, every answer after a tool phrased by the LLM, examples not primed "
        "(the agent of the first issue-15 measurement)",
        default_agent=True,
        direct_answers=False,
        prime_examples=False,
    ),
    "piper": Config("default with the Piper voice", tts="piper"),
    "piper-no-preemptive": Config(
        "Piper, no preemptive generation (the stack's first improved state)",
        tts="piper",
        preemptive=False,
        min_endpointing_delay=0.5,
    ),
    "no-speculation": Config("default without speculative STT", speculate_after=None),
    "window30": Config("default with Whisper's 30 s window", whisper_window=None),
    "no-clause": Config("default, first TTS chunk a whole sentence", first_clause_words=None),
    "first-words": Config("default, the first 4 words spoken as soon as written", first_words=4),
    "llm1": Config("default, llama.cpp on 1 thread", llm_threads=(1, 1)),
    "llm1b2": Config("default, llama.cpp generating on 1 thread, prompts on 2", llm_threads=(1, 2)),
    "fast-endpoint": Config(
        "default, VAD silence 0.3 s, min endpointing delay 0.3 s",
        vad_silence=0.3,
        min_endpointing_delay=0.3,
    ),
}
