"""What a turn did (:class:`TurnOutcome`) checked against what it had to do (:class:`Expect`).

Pure functions, no I/O: each check returns a :class:`CheckResult` saying why it failed. The LLM
judge is separate (:mod:`.judge`), as it needs a model.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from .scenario import Defaults, Expect, ToolExpectation

__all__ = [
    "CheckResult",
    "ToolUse",
    "TurnOutcome",
    "check_turn",
    "ungrounded",
    "unspeakable",
]


@dataclass(frozen=True)
class ToolUse:
    name: str
    arguments: dict[str, Any]
    output: str
    is_error: bool = False


@dataclass
class TurnOutcome:
    """What happened in one user turn."""

    user_text: str
    """What the user typed or said (for audio: the text spoken, if known)."""
    heard: str | None = None
    """Audio mode: the agent's transcript of the user's turn."""
    tools: list[ToolUse] = field(default_factory=list)
    reply: str = ""
    e2e_ms: float | None = None
    interrupted: bool = False
    error: str | None = None


@dataclass(frozen=True)
class CheckResult:
    check: str
    passed: bool
    why: str = ""


def _arguments_match(expected: dict[str, Any], actual: dict[str, Any]) -> str | None:
    """None if ``expected`` is a subset of ``actual``; else what differs."""
    for key, want in expected.items():
        if key not in actual:
            return f"no argument {key!r}"
        got = actual[key]
        if isinstance(want, str) and isinstance(got, str):
            if want.casefold().strip() != got.casefold().strip():
                return f"{key}={got!r}, expected {want!r}"
        elif isinstance(want, int | float) and isinstance(got, int | float | str):
            try:
                if abs(float(got) - float(want)) > 1e-9:
                    return f"{key}={got!r}, expected {want!r}"
            except ValueError:
                return f"{key}={got!r}, expected {want!r}"
        elif want != got:
            return f"{key}={got!r}, expected {want!r}"
    return None


def _check_tool(want: ToolExpectation, used: list[ToolUse]) -> CheckResult:
    calls = [u for u in used if u.name == want.name]
    if not calls:
        called = ", ".join(u.name for u in used) or "no tool"
        return CheckResult(f"tool {want.name}", False, f"called {called}")
    problems = [_arguments_match(want.args, c.arguments) for c in calls]
    if all(p is not None for p in problems):
        return CheckResult(f"tool {want.name}", False, f"{want.name}: {problems[0]}")
    return CheckResult(f"tool {want.name}", True)


def _as_list(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


_NUMBER_FORMS = re.compile(r"(?<=\d),(?=\d{3}\b)")


def _norm(text: str) -> str:
    return " ".join(_NUMBER_FORMS.sub("", text.casefold().replace("’", "'")).split())


_PREAMBLE = re.compile(
    r"^\s*(?:sure|certainly|of course|absolutely)\b[^.!?]*?\bhere(?:'s| is| are)\b"
    r"|^\s*here(?:'s| is| are)\b[^.!?]*:",
    re.IGNORECASE,
)
_MARKDOWN = re.compile(r"\*\*|__|`|^#|^\s*[-*•]\s|^\s*\d+[.)]\s|\[[^\]]*\]\(", re.MULTILINE)
_EMOJI = re.compile("[\U0001f000-\U0001faff\U00002600-\U000027bf\U0001f900-\U0001f9ff]")


def unspeakable(reply: str) -> str | None:
    """Why ``reply`` is not fit to be spoken, or None."""
    if "\n" in reply.strip():
        return "has a line break"
    if _MARKDOWN.search(reply):
        return "has Markdown or a list"
    if _EMOJI.search(reply):
        return "has an emoji"
    if _PREAMBLE.search(reply):
        return 'opens with a "here\'s" preamble'
    if "{" in reply and '"name"' in reply:
        return "speaks a tool call's JSON"
    return None


_DIGITS = re.compile(r"\d+(?:\.\d+)?")
_MONTHS = (
    "january february march april may june july august september october november december"
).split()
_WEEKDAYS = "monday tuesday wednesday thursday friday saturday sunday".split()


def _numbers(text: str) -> list[float]:
    return [float(m) for m in _DIGITS.findall(_NUMBER_FORMS.sub("", text))]


def _grounded_number(value: float, decimals: int, sources: list[float]) -> bool:
    for source in sources:
        if abs(source - value) < 1e-9 or round(source, decimals) == value:
            return True
        if source.is_integer() and 12 < source < 24 and abs(source - 12 - value) < 1e-9:
            return True  # 14:05 said as 2:05
        if source == 0 and value == 12:
            return True  # 00:30 said as 12:30
        if source >= 1000 and value < 1000 and abs(source / 1000 - value) < 0.05:
            return True  # "7 thousand" (rare, spoken)
    return False


def ungrounded(reply: str, sources: list[str]) -> list[str]:
    """The numbers, months and weekdays in ``reply`` that none of ``sources`` (the tool results
    of the turn and the user's words) contains."""
    source_text = _norm(" ".join(sources))
    source_numbers = _numbers(source_text)
    missing: list[str] = []
    for m in _DIGITS.finditer(_NUMBER_FORMS.sub("", reply)):
        token = m.group()
        decimals = len(token.split(".")[1]) if "." in token else 0
        if not _grounded_number(float(token), decimals, source_numbers):
            missing.append(token)
    words = set(re.findall(r"[a-z]+", reply.casefold()))
    for name in (*_MONTHS, *_WEEKDAYS):
        if name in words and name not in source_text and name != "may":
            missing.append(name.capitalize())
    return missing


def check_turn(outcome: TurnOutcome, expect: Expect, defaults: Defaults) -> list[CheckResult]:
    """Every check ``expect`` (with ``defaults``) asks for, except the judge's."""
    results: list[CheckResult] = []
    if outcome.error is not None:
        results.append(CheckResult("error", False, outcome.error))
    for want in expect.tools():
        results.append(_check_tool(want, outcome.tools))
    if expect.no_tool:
        names = ", ".join(u.name for u in outcome.tools)
        results.append(CheckResult("no tool", not outcome.tools, f"called {names}"))
    reply = _norm(outcome.reply)
    for text in _as_list(expect.contains):
        ok = _norm(text) in reply
        results.append(CheckResult(f"contains {text!r}", ok, f"reply: {outcome.reply!r}"))
    if expect.contains_any:
        ok = any(_norm(t) in reply for t in expect.contains_any)
        label = " | ".join(expect.contains_any)
        results.append(CheckResult(f"contains one of {label!r}", ok, f"reply: {outcome.reply!r}"))
    for text in _as_list(expect.not_contains):
        ok = _norm(text) not in reply
        results.append(CheckResult(f"not {text!r}", ok, f"reply: {outcome.reply!r}"))
    if expect.matches is not None:
        ok = re.search(expect.matches, outcome.reply, re.IGNORECASE) is not None
        results.append(CheckResult(f"matches {expect.matches!r}", ok, f"reply: {outcome.reply!r}"))
    within = expect.within_ms if expect.within_ms is not None else defaults.within_ms
    if within is not None:
        e2e = outcome.e2e_ms
        ok = e2e is not None and e2e <= within
        why = "no reply" if e2e is None else f"{e2e:.0f} ms > {within} ms"
        results.append(CheckResult(f"within {within} ms", ok, why))
    if expect.interrupt_after is not None:
        results.append(
            CheckResult("interrupted", outcome.interrupted, "the reply was not interrupted")
        )
    speakable = expect.speakable if expect.speakable is not None else defaults.speakable
    if speakable and outcome.reply:
        problem = unspeakable(outcome.reply)
        results.append(CheckResult("speakable", problem is None, problem or ""))
    grounded = expect.grounded if expect.grounded is not None else defaults.grounded
    if grounded and outcome.reply:
        sources = [outcome.user_text, *(outcome.heard or "",), *(u.output for u in outcome.tools)]
        sources += [json.dumps(u.arguments) for u in outcome.tools]
        missing = ungrounded(outcome.reply, sources)
        why = f"states {', '.join(missing)}, which no tool returned" if missing else ""
        results.append(CheckResult("grounded", not missing, why))
    if not outcome.reply and not outcome.error and expect.interrupt_after is None:
        results.append(CheckResult("reply", False, "the agent said nothing"))
    return results
