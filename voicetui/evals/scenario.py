"""The scenario file's schema (``voicetui eval FILE.yaml``), validated with pydantic.

A file holds ``scenarios`` (and optional ``defaults`` applied to every turn's expectations). A
scenario is a list of user turns in one session; each turn is given as ``say`` (text: typed in
text mode, spoken by a voice the agent does not use in audio mode), ``wav`` (a WAV file, relative
to the scenario file) or ``recording`` (a recording folder and the number of one of its user
turns), with what the agent must do in ``expect``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["Expect", "RecordingTurn", "Scenario", "Suite", "ToolExpectation", "Turn"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ToolExpectation(_Strict):
    """A tool the agent must call in the turn: its name and a subset of its arguments (string
    values compare without case; numbers as numbers)."""

    name: str
    args: dict[str, Any] = Field(default_factory=dict)


class Expect(_Strict):
    """What the agent must do in one turn (every field given must hold)."""

    tool: ToolExpectation | str | list[ToolExpectation | str] | None = None
    """A tool name, ``{name, args}``, or a list of them (all must be called, in any order)."""
    no_tool: bool = False
    contains: str | list[str] | None = None
    """Text the reply must contain (without case); a list: every item."""
    contains_any: list[str] | None = None
    """At least one of these."""
    not_contains: str | list[str] | None = None
    matches: str | None = None
    """A regular expression the reply must match (``re.search``, ignoring case)."""
    judge: str | None = None
    """An intent the reply must fulfil, as judged by an LLM (its verdict and reason are shown)."""
    within_ms: int | None = Field(default=None, gt=0)
    """End of the user's turn → the agent's first audio (text mode: first reply text)."""
    interrupt_after: float | None = Field(default=None, gt=0)
    """Audio mode: the user speaks over the agent this many seconds into its reply; the reply
    must stop (be marked interrupted)."""
    speakable: bool | None = None
    """The reply has no Markdown, list, line break, emoji or "Sure, here's" preamble."""
    grounded: bool | None = None
    """Every time, date and number with digits in the reply came from a tool result of this
    turn or from the user's words."""

    @field_validator("matches")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as e:
                raise ValueError(f"not a regular expression: {e}") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Expect:
        if self.no_tool and self.tool is not None:
            raise ValueError("no_tool and tool cannot both be given")
        return self

    def tools(self) -> list[ToolExpectation]:
        match self.tool:
            case None:
                return []
            case str() as name:
                return [ToolExpectation(name=name)]
            case ToolExpectation() as one:
                return [one]
            case list() as many:
                return [ToolExpectation(name=t) if isinstance(t, str) else t for t in many]


class Defaults(_Strict):
    """Applied to every turn that does not say otherwise."""

    speakable: bool = False
    grounded: bool = False
    within_ms: int | None = Field(default=None, gt=0)


class RecordingTurn(_Strict):
    dir: Path
    turn: int = Field(ge=1)
    """The user turn's number in the recording (1 = the first)."""


class Turn(_Strict):
    say: str | None = None
    wav: Path | None = None
    recording: RecordingTurn | None = None
    expect: Expect = Field(default_factory=Expect)

    @model_validator(mode="after")
    def _one_input(self) -> Turn:
        given = [k for k in ("say", "wav", "recording") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of say, wav or recording"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if self.say is not None and not self.say.strip():
            raise ValueError("say is empty")
        return self

    def label(self) -> str:
        if self.say is not None:
            return self.say
        if self.wav is not None:
            return f"[{self.wav.name}]"
        assert self.recording is not None
        return f"[{self.recording.dir.name} turn {self.recording.turn}]"


class Scenario(_Strict):
    name: str = Field(min_length=1)
    turns: list[Turn] = Field(min_length=1)
    tags: list[str] = Field(default_factory=list)


class Suite(_Strict):
    defaults: Defaults = Field(default_factory=Defaults)
    scenarios: list[Scenario] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> Suite:
        seen: set[str] = set()
        for s in self.scenarios:
            if s.name in seen:
                raise ValueError(f"two scenarios are named {s.name!r}")
            seen.add(s.name)
        return self
