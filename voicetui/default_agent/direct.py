"""Answers said straight from the tools' results, without a second LLM step.

After a tool has run, a LiveKit-style agent calls the LLM again to phrase the answer. For most
of the default agent's tools the result already is the answer ("15 percent of 80 is 12", "the
tea timer is set for 4 minutes", the time): the second step only costs time (the prompt with the
tool result is evaluated, then the reply decoded: about a second on two cores, docs/
benchmarks.md) and gives the 0.5B model a chance to garble a number. :func:`direct_answer`
turns the results of one turn into the spoken answer when every tool of the turn has such a
result; otherwise (a failed tool, notes to look up, a tool it does not know) it returns None and
the model phrases the answer as before. The tool calls and their results stay in the history
as they are; the answer is recorded as the assistant's reply.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["ToolResult", "direct_answer", "spoken_time"]


@dataclass(frozen=True)
class ToolResult:
    name: str
    output: str
    is_error: bool = False


_TIME = re.compile(
    r"^(?P<h>\d{1,2}):(?P<m>\d\d) on (?P<weekday>[A-Za-z]+) (?P<day>\d{1,2}) (?P<month>[A-Za-z]+) "
    r"(?P<year>\d{4}) \((?P<zone>[^,()]+), [^()]*\)$"
)


def _part_of_day(hour: int) -> str:
    if 5 <= hour < 12:
        return "in the morning"
    if 12 <= hour < 18:
        return "in the afternoon"
    if 18 <= hour < 22:
        return "in the evening"
    return "at night"


def spoken_time(result: str) -> str | None:
    """:func:`.clock.current_time`'s ``"14:05 on Tuesday 24 November 2026 (Europe/Paris,
    UTC+01:00)"`` as a sentence: ``"In Paris it's 2:05 in the afternoon on Tuesday 24 November
    2026."`` (the city of an IANA zone is named; the user's own zone, given by its abbreviation,
    is not). None for any other text."""
    m = _TIME.match(result.strip())
    if m is None:
        return None
    hour, minute = int(m["h"]), m["m"]
    clock = f"{hour % 12 or 12}:{minute} {_part_of_day(hour)}"
    date = f"{m['weekday']} {int(m['day'])} {m['month']} {m['year']}"
    zone = m["zone"]
    if "/" in zone:
        return f"In {zone.rsplit('/', 1)[-1].replace('_', ' ')} it's {clock} on {date}."
    return f"It's {clock} on {date}."


def _sentence(text: str) -> str:
    text = " ".join(text.split()).rstrip(" .")
    return text[:1].upper() + text[1:] + "." if text else ""


def _timers_left(output: str) -> str:
    """``"the tea timer: 3 minutes left; the 5 minute timer: 20 seconds left"`` → ``"The tea
    timer has 3 minutes left, and the 5 minute timer has 20 seconds left."``"""
    parts = []
    for entry in output.split(";"):
        name, sep, left = entry.partition(":")
        parts.append(f"{name.strip()} has {left.strip()}" if sep else entry.strip())
    if len(parts) > 1:
        return _sentence(", ".join(parts[:-1]) + ", and " + parts[-1])
    return _sentence(parts[0])


_RELATIVE = re.compile(
    r"\b(?:tomorrow|yesterday|next|last|ago|from now|until|till|since|before|after|later|"
    r"how (?:long|many|much))\b",
    re.IGNORECASE,
)
"""Words of a question about another moment than now ("what day is it tomorrow", "how many days
until Friday"): the time alone does not answer it; the model does, with the time."""


def _answer(result: ToolResult, user_text: str) -> str | None:
    output = result.output.strip()
    if result.name == "get_time":
        return None if _RELATIVE.search(user_text) else spoken_time(output)
    if result.name in ("calculate", "set_timer"):
        return _sentence(output)
    if result.name == "cancel_timer":
        return _sentence(f"I {output}" if output.startswith("cancelled ") else output)
    if result.name == "list_timers":
        return _timers_left(output)
    if result.name == "remember":
        note = output.removeprefix("saved the note:").strip()
        return _sentence(f"I saved the note: {note}") if note else None
    return None  # recall and any other tool: the model answers the question with the result


def direct_answer(results: Sequence[ToolResult], user_text: str = "") -> str | None:
    """The spoken answer made of ``results`` (this turn's tool results, in order) to the
    request ``user_text``, or None when one of them failed or needs the model to be put into
    words."""
    if not results:
        return None
    sentences: list[str] = []
    for result in results:
        if result.is_error:
            return None
        sentence = _answer(result, user_text)
        if not sentence:
            return None
        if sentence not in sentences:
            sentences.append(sentence)
    return " ".join(sentences)
