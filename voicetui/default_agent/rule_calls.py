"""A tool's arguments read from the user's words by rules, when they can be read with certainty.

:func:`.router.route` decides which tool a request needs; the model is then asked to write the
call's arguments, which costs an LLM step (about a second on two cores before the first audio,
more under load) and gives the 0.5B model a chance to get them wrong (a timer of ``2`` seconds
for "2 minutes", a time zone copied from its examples). For requests whose arguments are plainly
in the words ("what time is it in Tokyo", "set a timer for 3 minutes for the eggs", "cancel the
tea timer", "remember that my car is on level 3"), :func:`rule_arguments` reads them, and the
agent makes the call itself. Anything it cannot read with certainty (a place the time-zone
database does not know, a duration like "an hour and a half") returns None: the model writes the
arguments as before.
"""

from __future__ import annotations

import re
from typing import Any

from .calculator import arithmetic_in
from .clock import TimeZoneError, find_zone
from .timers import parse_duration

__all__ = ["rule_arguments"]

_NUMBER = (
    r"(?:\d+(?:\.\d+)?|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
    r"fifteen|twenty|thirty|forty-five|forty|fifty|sixty|ninety)"
)
_UNIT = r"(?:hours?|hrs?|minutes?|mins?|seconds?|secs?)"
_DURATION = re.compile(
    rf"\b{_NUMBER}[\s-]+{_UNIT}\b(?:(?:,?\s+(?:and\s+)?){_NUMBER}[\s-]+{_UNIT}\b)*"
)
_VAGUE_DURATION = re.compile(r"\bhalf\b|\band a (?:half|quarter)\b|\bquarter\b|\bcouple\b|\bfew\b")
_LABEL = re.compile(
    r"\bfor (?:the |my |a |an |our )?(?P<label>[a-z][a-z' ]*?)\s*(?:$|\band\b|[,.!?;:])"
)
_CANCEL_LABEL = re.compile(
    r"\b(?:cancel|stop|delete|remove|clear|turn off|kill|end)\s+(?:the |my |that |this )?"
    r"(?P<label>[a-z][a-z' ]*?)\s*(?:timers?|alarms?)\b"
)
_FOLLOW_UP = re.compile(
    r"^(?:and|what about|how about|now|ok(?:ay)?,? (?:and|now)|also|then)\b(?:\s+then\b)?"
)
_EVERY = {"", "all", "all the", "all my", "all of my", "all of the", "every", "each", "any"}
_PLACE = re.compile(r"\b(?:in|at|for)\s+(?=(?P<words>[a-z][a-z.' -]*))")
_HERE = re.compile(r"\b(?:in|at|for)\s+(?:here|the (?:morning|afternoon|evening|moment|day))\b")
_NOTE = re.compile(
    r"(?:\bremember (?:that|this:?)|\bremember to\b|\bremember (?=my\b)|^(?:please )?remember\b"
    r"|\b(?:take|make|save|add|write) (?:a |this )?note(?: that| to| of| about)?:?"
    r"|\bnote (?:that|down):?|\bwrite (?:that |this |it )?down:?|\bjot (?:that |this )?down:?"
    r"|\bdon'?t (?:let me )?forget (?:that |to )?|\bkeep in mind (?:that )?|^note:)"
)


def _normalized(text: str) -> str:
    return " ".join(text.casefold().replace("’", "'").split())


def _known_zone(words: list[str]) -> str | None:
    """The zone of the first run of 1-3 of ``words`` the time-zone database knows as a place."""
    for start in range(len(words)):
        for n in range(min(3, len(words) - start), 0, -1):
            name = " ".join(words[start : start + n]).strip(" .'")
            if not name or name in ("the", "a", "an"):
                continue
            try:
                return find_zone(name).key
            except (TimeZoneError, ValueError, OSError):
                continue
    return None


def _zone(text: str) -> dict[str, Any] | None:
    """``{"timezone": ...}`` for the place named after "in"/"at"/"for" (or anywhere in a
    follow-up such as "what about Paris?"), ``{}`` when no place is named, None when a place is
    named that the time-zone database does not know by that name."""
    places = [m for m in _PLACE.finditer(text) if not _HERE.match(text, m.start())]
    follow_up = _FOLLOW_UP.match(text)
    if not places and follow_up is not None:
        # "and London?", "what about Paris": the place without "in"; nothing known: the model
        named = _known_zone(re.split(r"[\s,.!?]+", text[follow_up.end() :].strip(" ?.!,")))
        return {"timezone": named} if named else None
    if not places:
        return {}
    for m in places:
        words = re.split(r"[\s,.!?]+", m["words"].strip(" ?.!,"))
        for n in range(min(3, len(words)), 0, -1):
            name = " ".join(words[:n]).strip(" .'")
            if not name or name in ("the", "a", "an"):
                continue
            try:
                zone = find_zone(name)
            except (TimeZoneError, ValueError, OSError):
                continue
            return {"timezone": zone.key}
    return None


def _timer(text: str) -> dict[str, Any] | None:
    if _VAGUE_DURATION.search(text):
        return None
    m = _DURATION.search(text)
    if m is None:
        return None
    duration = m.group()
    try:
        parse_duration(duration)
    except ValueError:
        return None
    rest = text[: m.start()] + " " + text[m.end() :]
    label = ""
    for found in _LABEL.finditer(rest):
        words = found["label"].strip()
        if words and not re.search(r"\d|\b(?:timer|alarm|me|us|it|now|later)\b", words):
            label = words
            break
    return {"duration": duration, "label": label}


def _cancel(text: str) -> dict[str, Any] | None:
    m = _CANCEL_LABEL.search(text)
    if m is None:
        return None
    label = m["label"].strip()
    if label in _EVERY or label in ("my", "the", "that", "this", "running"):
        return {"label": ""}
    if re.search(r"\d|\b(?:minute|second|hour)s?\b", label) or len(label.split()) > 2:
        return None  # "the 5 minute timer": the model matches it to a timer
    return {"label": label}


def _note(text: str, original: str) -> dict[str, Any] | None:
    m = _NOTE.search(text)
    if m is None:
        return None
    note = original[m.end() :] if len(original) == len(text) else text[m.end() :]
    note = note.strip(" :,.!?\"'")
    if len(note.split()) < 2:
        return None
    return {"note": note[:1].upper() + note[1:] + "."}


def rule_arguments(tool: str, user_text: str) -> dict[str, Any] | None:
    """The arguments of ``tool`` for the request ``user_text``, or None when the model is to
    write them."""
    text = _normalized(user_text)
    if tool == "calculate":
        phrase = arithmetic_in(user_text)
        return {"expression": phrase} if phrase else None
    if tool == "get_time":
        return _zone(text)
    if tool == "list_timers":
        return {}
    if tool == "set_timer":
        return _timer(text)
    if tool == "cancel_timer":
        return _cancel(text)
    if tool == "remember":
        original = " ".join(user_text.replace("’", "'").split())
        return _note(text, original)
    return None
