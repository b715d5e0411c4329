"""Which of the default agent's tools a user's words call for, decided by rules before the model
writes anything.

The embedded model (Qwen2.5-Coder-0.5B) is good at filling in a tool's arguments and at phrasing
a tool's result, and poor at deciding whether a tool is needed: it states the time from thin air,
or calls ``remember`` to tell a joke (measured in docs/benchmarks.md). So the agent decides with
these rules, and the model is told which tool to call (or that it may call none):

* :func:`route` returns the tools a request needs, in the order the request names them ("what
  time is it in Tokyo and what is 12 times 9" → ``get_time`` then ``calculate``);
* a short follow-up with no words of its own ("and in Paris?", "what about 20 percent?") needs
  the tools of the turn before;
* no tool named: the model answers in words, and may not call a tool.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Route", "route"]

_NUMBER_WORDS = (
    r"(?:\d+(?:[.,]\d+)?|a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
    r"fifteen|twenty|thirty|forty|fifty|sixty|ninety|half an?|a couple of|a few)"
)
_DURATION = re.compile(rf"\b{_NUMBER_WORDS}[\s-]+(?:second|sec|minute|min|hour|hr)s?\b")

_CANCEL_TIMER = re.compile(
    r"\b(?:cancel|stop|delete|remove|clear|turn off|kill|end)\b.*\b(?:timers?|alarms?)\b"
    r"|\b(?:timers?|alarms?)\b.*\b(?:cancel(?:led)?|off|stop)\b"
)
_TIMER = re.compile(r"\b(?:timers?|alarms?|countdown)\b|\bremind me in\b|\bwake me in\b")
_SET_TIMER = re.compile(r"\b(?:set|start|make|create|put on|add)\b")

_RECALL = re.compile(
    r"\bwhat did i (?:tell|ask|say|want)\b|\bwhat do you remember\b|\bdo you remember\b"
    r"|\brecall\b|\b(?:my|any|the|what|which) notes?\b|\bnotes? (?:about|on|do i)\b"
    r"|\bremind me what\b|\bwhat (?:was|is|were|are) my\b|\bwhat's my\b|\bdid i (?:save|note)\b"
    r"|\blook up\b.*\bnotes?\b|\bwhat did you (?:note|save|write)\b"
)
_REMEMBER = re.compile(
    r"\bremember (?:that|this|to|my)\b|\b(?:take|make|save|add|write) (?:a |this )?(?:note|down)\b"
    r"|\bnote (?:that|down)\b|\bwrite (?:that |this |it )?down\b|\bjot (?:that |this )?down\b"
    r"|\bdon'?t (?:let me )?forget\b|\bkeep in mind\b|^(?:please )?remember\b|^note:"
)

_CONVERSION = re.compile(
    r"\bhow many (?:seconds|minutes|hours|days|weeks|months|years|milliseconds)\b"
    r".*\b(?:in|are there in|make|is|per)\b"
)
_CALC = re.compile(
    r"\b(?:plus|minus|times|multiplied|divided|\d+ over \d+|percent|percentage|squared|cubed|square root|"
    r"cube root|sqrt|tip|power of|to the power|factorial|sum of|product of|average of|half of|"
    r"double|triple|twice|calculate|compute|add up|subtract|multiply|divide)\b"
    r"|%|\d\s*[-+*/x×÷^]\s*\d|\bhow much is \d|\bwhat is \d|\bwhat's \d"
)
_TIME = re.compile(
    r"\b(?:time|date|today|tomorrow|yesterday|weekday|o'?clock|clock)\b"
    r"|\bwhat day\b|\bwhich day\b|\bday (?:is it|of the week|is today)\b|\bwhat year\b"
    r"|\bwhat month\b|\bwhich month\b|\bis it (?:morning|night|evening|afternoon)\b"
)
_NOT_TIME = re.compile(r"\bonce upon a time\b|\bthe time (?:you|i|we)\b")

_OUT_OF_SCOPE = re.compile(
    r"\b(?:weather|forecast|rain|snow|temperature outside|e-?mail|text message|flights?|"
    r"hotel|taxi|uber|order|buy|purchase|pay|call (?:my|mom|dad|him|her)|play (?:some |a )?"
    r"(?:music|song)|turn (?:on|off) the|lights?|news|stock|directions|navigate)\b"
)
"""Requests no tool can do: the model is to say so, not to call a tool."""

_FOLLOW_UP = re.compile(
    r"^(?:and|what about|how about|now|ok(?:ay)?,? (?:and|now)|also|then)\b", re.IGNORECASE
)
_MAX_FOLLOW_UP_WORDS = 7


@dataclass(frozen=True)
class Route:
    """The tools a request needs, in order (empty: none; answer in words)."""

    tools: tuple[str, ...]
    follow_up: bool = False


def _first(pattern: re.Pattern[str], text: str) -> int | None:
    m = pattern.search(text)
    return m.start() if m else None


def _needs(text: str) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    timer_at = _first(_TIMER, text)
    if timer_at is not None:
        if _CANCEL_TIMER.search(text):
            found.append((timer_at, "cancel_timer"))
        elif _DURATION.search(text) or (_SET_TIMER.search(text) and not text.startswith("what")):
            found.append((timer_at, "set_timer"))
        else:
            found.append((timer_at, "list_timers"))
    recall_at = _first(_RECALL, text)
    remember_at = _first(_REMEMBER, text)
    if recall_at is not None and (remember_at is None or recall_at <= remember_at):
        found.append((recall_at, "recall"))
    elif remember_at is not None:
        found.append((remember_at, "remember"))
    notes_tool = recall_at is not None or remember_at is not None
    calc_at = _first(_CONVERSION, text)
    if calc_at is None:
        calc_at = _first(_CALC, text)
    if calc_at is not None and not (notes_tool and remember_at is not None):
        found.append((calc_at, "calculate"))
    time_at = _first(_TIME, text)
    if time_at is not None and timer_at is None and not notes_tool and not _NOT_TIME.search(text):
        found.append((time_at, "get_time"))
    return found


def route(text: str, previous: tuple[str, ...] = ()) -> Route:
    """The tools ``text`` needs; ``previous``: those of the turn before (for follow-ups)."""
    normalized = " ".join(text.casefold().replace("’", "'").split())
    if _OUT_OF_SCOPE.search(normalized) and not _REMEMBER.search(normalized):
        return Route(())
    found = _needs(normalized)
    if found:
        ordered: list[str] = []
        for _, name in sorted(found):
            if name not in ordered:
                ordered.append(name)
        return Route(tuple(ordered))
    words = normalized.split()
    if previous and _FOLLOW_UP.match(normalized) and len(words) <= _MAX_FOLLOW_UP_WORDS:
        return Route(previous, follow_up=True)
    return Route(())
