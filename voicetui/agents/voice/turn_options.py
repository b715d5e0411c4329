"""Every turn-taking option of a voice session, declared once: its type, default, bounds and
documentation. ``AgentSession`` holds a complete set (:class:`TurnOptions`), an ``Agent`` a
partial one laid over it (:class:`TurnOverrides`); voicetui's config file embeds the model and
its command-line flags are generated from the fields (help text from the docstrings)."""

from __future__ import annotations

from typing import Any, Literal, Self, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..types import NotGiven

TurnDetectionMode: TypeAlias = Literal["vad", "stt", "manual"]


class TurnOptionsError(ValueError):
    """A turn-taking option has a bad value; the message names each one and says why."""


class _TurnFields(BaseModel):
    """The fields, shared by the complete options and the partial overlay."""

    model_config = ConfigDict(
        extra="forbid", allow_inf_nan=False, frozen=True, use_attribute_docstrings=True
    )

    allow_interruptions: bool = True
    """Let the user interrupt the agent by speaking."""
    discard_audio_if_uninterruptible: bool = True
    """Drop what the user says while the agent says something that cannot be interrupted."""
    min_interruption_duration: float = Field(default=0.5, ge=0)
    """Seconds the user must speak to interrupt the agent."""
    min_interruption_words: int = Field(default=0, ge=0)
    """Words the user must say to interrupt the agent (0: their voice is enough)."""
    min_endpointing_delay: float = Field(default=0.5, ge=0)
    """Seconds of silence after the user's voice before their turn ends."""
    max_endpointing_delay: float = Field(default=6.0, ge=0)
    """Seconds after the user's voice at most before their turn ends, with or without a final
    transcript."""
    max_tool_steps: int = Field(default=3, ge=0)
    """Rounds of tool calls the LLM may make for one reply."""
    user_away_timeout: float | None = 15.0
    """Seconds both sides are silent before the user counts as away."""
    false_interruption_timeout: float | None = 2.0
    """Seconds after an interruption without words before it counts as false."""
    resume_false_interruption: bool = True
    """Resume the agent's speech after a false interruption."""
    min_consecutive_speech_delay: float = Field(default=0.0, ge=0)
    """Seconds of pause between two speeches of the agent."""
    preemptive_generation: bool = False
    """Start the reply on the final transcript, before the end of the user's turn."""
    turn_detection: TurnDetectionMode | None = None
    """What ends the user's turn: vad, stt or manual (push-to-talk); by default vad with a VAD,
    else stt with an STT, else manual."""

    def given(self) -> dict[str, Any]:
        """The options set explicitly (not left to their defaults), by name."""
        return self.model_dump(exclude_unset=True)

    @classmethod
    def build(cls, base: _TurnFields | None = None, /, **options: Any) -> Self:
        """``base``'s explicit options with ``options`` over them (``NOT_GIVEN`` ones are
        skipped). Raises :class:`TurnOptionsError` naming every bad value."""
        given = base.given() if base is not None else {}
        given.update({k: v for k, v in options.items() if not isinstance(v, NotGiven)})
        try:
            return cls.model_validate(given)
        except ValidationError as e:
            raise TurnOptionsError(explain(e)) from None


class TurnOptions(_TurnFields):
    """The turn-taking options of an ``AgentSession``: complete, the defaults fill what was not
    given (``given()`` still tells those that were). A timeout of None disables it;
    ``turn_detection=None`` picks the mode from the models."""

    @model_validator(mode="after")
    def _delays_in_order(self) -> Self:
        low, high = self.min_endpointing_delay, self.max_endpointing_delay
        if low > high:
            raise ValueError(
                f"min_endpointing_delay ({low:g} s) is above max_endpointing_delay ({high:g} s)"
            )
        return self

    def with_overrides(self, overrides: TurnOverrides) -> TurnOptions:
        """These options with what ``overrides`` sets replacing them."""
        given = overrides.given()
        return self.model_copy(update=given) if given else self


class TurnOverrides(_TurnFields):
    """An ``Agent``'s turn-taking options: only those it sets count (``given()``); the others
    are the session's. Read the effective ones from ``AgentActivity.options``."""


def explain(error: ValidationError) -> str:
    """One line per bad value: ``name: why (got value)``."""
    lines = []
    for err in error.errors():
        name = ".".join(str(p) for p in err["loc"]) or "options"
        why = "unknown option" if err["type"] == "extra_forbidden" else err["msg"]
        why = why.removeprefix("Value error, ")
        got = f" (got {err['input']!r})" if err["loc"] else ""
        lines.append(f"{name}: {why}{got}")
    return "; ".join(lines)
