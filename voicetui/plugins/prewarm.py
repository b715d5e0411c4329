"""Loading a session's models ahead of the first turn, with progress the TUI can show.

Models load one after the other: on two cores, loading Whisper, Piper and llama.cpp at once
makes each slower and the first turn later. Failures are collected as readable messages; a model
that fails to load does not stop the others (the session reports it again on use)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..agents.exceptions import ModelError
from ..agents.llm import ChatItem, FunctionTool
from .selection import SessionModels

logger = logging.getLogger("voicetui.plugins")

ModelKind = Literal["vad", "stt", "llm", "tts"]


@dataclass(frozen=True)
class LoadProgress:
    kind: ModelKind
    label: str
    stage: str
    """"start", a model's own stage ("model", "load", "prime", ...), "ready" or "failed"."""
    fraction: float | None = None
    message: str = ""
    elapsed: float = 0.0


ProgressCallback = Callable[[LoadProgress], None]


async def prewarm_models(
    models: SessionModels,
    *,
    instructions: str | None = None,
    tools: Sequence[FunctionTool] = (),
    on_progress: ProgressCallback | None = None,
    history: Sequence[ChatItem] = (),
) -> list[str]:
    """Load every model of ``models`` (VAD, STT, TTS, then the LLM with its prompt prefix
    primed for ``instructions`` + ``tools`` + ``history``: the items an agent puts before every
    conversation, see :func:`prompt_prefix`). Returns one message per model that failed."""
    errors: list[str] = []
    order: list[tuple[ModelKind, Any]] = [
        ("vad", models.vad),
        ("stt", models.stt),
        ("tts", models.tts),
        ("llm", models.llm),
    ]
    for kind, model in order:
        if model is None:
            continue
        label = str(getattr(model, "label", type(model).__name__))
        started = time.perf_counter()

        def report(
            stage: str,
            fraction: float | None = None,
            message: str = "",
            *,
            _kind: ModelKind = kind,
            _label: str = label,
            _started: float = started,
        ) -> None:
            if on_progress is not None:
                on_progress(
                    LoadProgress(
                        _kind, _label, stage, fraction, message, time.perf_counter() - _started
                    )
                )

        report("start", 0.0)
        try:
            await _prewarm_one(kind, model, instructions, tools, report, history)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            text = e.message if isinstance(e, ModelError) else f"{type(e).__name__}: {e}"
            logger.error("loading the %s (%s) failed: %s", kind, label, text)
            errors.append(f"{kind.upper()} {label}: {text}")
            report("failed", None, text)
            continue
        report("ready", 1.0)
    return errors


def prompt_prefix(agent: Any) -> list[ChatItem]:
    """The chat items ``agent`` puts between its instructions and every conversation (its
    ``prompt_prefix`` attribute, such as the default agent's made-up examples), to be primed
    with them; none for other agents."""
    items = getattr(agent, "prompt_prefix", None)
    return list(items) if items else []


async def _prewarm_one(
    kind: ModelKind,
    model: Any,
    instructions: str | None,
    tools: Sequence[FunctionTool],
    report: Callable[..., None],
    history: Sequence[ChatItem] = (),
) -> None:
    if kind == "vad":
        ensure = getattr(model, "_ensure_session", None)  # Silero: load the ONNX session
        if ensure is not None:
            await asyncio.to_thread(ensure)
        return
    prewarm = getattr(model, "prewarm", None)
    if prewarm is None:
        return  # hosted models have nothing to load
    if kind == "llm":

        def llm_progress(stage: str, done: float, total: float) -> None:
            report(stage, done / total if total else None)

        extra = {"history": list(history)} if history else {}
        await prewarm(instructions=instructions, tools=list(tools), progress=llm_progress, **extra)
    elif kind == "stt":

        def stt_progress(message: str, fraction: float) -> None:
            report("load", fraction, message)

        await prewarm(on_progress=stt_progress)
    else:
        await prewarm()
