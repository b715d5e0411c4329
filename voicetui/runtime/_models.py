"""The session's models as the runtime shows and loads them: one line saying which model does
what, and loading them ahead of the first turn with progress events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..agents.voice import Agent
from ..plugins.selection import SessionModels
from .api import ModelLoading, NoticeLevel, RuntimeEvent


def describe_models(models: SessionModels) -> str:
    """One line: which model does what (for models given as objects, e.g. in tests)."""

    def label(m: Any) -> str:
        return "none" if m is None else str(getattr(m, "label", type(m).__name__))

    return (
        f"STT {label(models.stt)}, LLM {label(models.llm)}, TTS {label(models.tts)}, "
        f"VAD {label(models.vad)}"
    )


async def prewarm(
    models: SessionModels,
    agent: Agent,
    kinds: set[str],
    emit: Callable[[RuntimeEvent], None],
    notice: Callable[[NoticeLevel, str], None],
) -> None:
    """Load the models of ``kinds`` ("stt", "vad", "llm", "tts") for ``agent``, with progress
    (ModelLoading events). A failure is a notice; the session reports it again on use."""
    if not kinds:
        return
    from ..plugins.prewarm import prewarm_models, prompt_prefix

    errors = await prewarm_models(
        SessionModels(
            stt=models.stt if "stt" in kinds else None,
            vad=models.vad if "vad" in kinds else None,
            llm=models.llm if "llm" in kinds else None,
            tts=models.tts if "tts" in kinds else None,
        ),
        instructions=agent.instructions,
        tools=agent.tools,
        history=prompt_prefix(agent),
        on_progress=lambda p: emit(
            ModelLoading(
                kind=p.kind, label=p.label, stage=p.stage, fraction=p.fraction, message=p.message
            )
        ),
    )
    for err in errors:
        notice("error", f"loading {err}")
