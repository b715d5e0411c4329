"""What-if replay: the same user audio under other turn settings, turn by turn — where each of
the user's turns ended now, whether it was cut off (split into several) or merged into the one
before, and how its latency changed.

The replay's user turns are matched to the original's by their words (the STT may hear a
little differently the second time; the alignment tolerates that): each new turn belongs to the
original turn most of its words come from."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from ..conversation import Turn
from .load import Recording

_WORD = re.compile(r"[\w']+")


def _words(text: str | None) -> list[str]:
    return [w.lower() for w in _WORD.findall(text or "")]


@dataclass
class WhatIfTurn:
    original: Turn
    now: list[Turn] = field(default_factory=list)
    """The replay's user turns made of this one's words (several: it was cut off)."""

    @property
    def cut_off(self) -> bool:
        return len(self.now) > 1

    @property
    def merged(self) -> bool:
        """Nothing of the replay is this turn alone: the user was still heard as speaking."""
        return not self.now

    @property
    def answered(self) -> Turn | None:
        """The replay's turn whose reply the user got for these words (the last one)."""
        return self.now[-1] if self.now else None


def match_turns(original: Recording, replayed: Recording) -> list[WhatIfTurn]:
    """Each of the original's spoken user turns with the replay's turns made of its words."""
    before = [t for t in original.user_turns if not t.typed]
    after = [t for t in replayed.user_turns if not t.typed]
    old_words: list[str] = []
    old_owner: list[int] = []
    for i, t in enumerate(before):
        for w in _words(t.user):
            old_words.append(w)
            old_owner.append(i)
    new_words: list[str] = []
    new_owner: list[int] = []
    for j, t in enumerate(after):
        for w in _words(t.user):
            new_words.append(w)
            new_owner.append(j)
    # votes[j][i]: words of new turn j matched to original turn i
    votes: list[dict[int, int]] = [{} for _ in after]
    matcher = difflib.SequenceMatcher(a=old_words, b=new_words, autojunk=False)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            i, j = old_owner[block.a + k], new_owner[block.b + k]
            votes[j][i] = votes[j].get(i, 0) + 1
    result = [WhatIfTurn(t) for t in before]
    last = 0
    for j, t in enumerate(after):
        if votes[j]:
            i = max(votes[j], key=lambda k: (votes[j][k], -k))
        else:  # no word in common (misheard): next to the previous one
            i = min(last, len(result) - 1) if result else -1
        if i >= 0:
            result[i].now.append(t)
            last = i
    return result


def _s(v: float | None) -> str:
    return f"{v:.2f}" if v is not None else "–"


def _delta(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return ""
    d = b - a
    return f" ({0.0 if abs(d) < 0.005 else d:+.2f})"


def format_whatif(turns: list[WhatIfTurn], settings: list[str]) -> str:
    """The per-turn report printed after the replay's diff."""
    lines = [f"what if {', '.join(settings)}:" if settings else "what if (same settings):"]
    cut = sum(t.cut_off for t in turns)
    merged = sum(t.merged for t in turns)
    for n, t in enumerate(turns, 1):
        before = t.original.latency
        said = (t.original.user or "").strip()
        said = said if len(said) <= 48 else said[:47] + "…"
        if t.merged:
            lines.append(f"  {n:>2}. {said!r}: heard with the turn before (merged)")
            continue
        answered = t.answered
        after = answered.latency if answered is not None else None
        parts = [
            f"EOU {_s(before.eou)} → {_s(after.eou if after else None)}"
            + _delta(before.eou, after.eou if after else None),
            f"e2e {_s(before.e2e)} → {_s(after.e2e if after else None)}"
            + _delta(before.e2e, after.e2e if after else None),
        ]
        mark = ""
        if t.cut_off:
            pieces = " | ".join((p.user or "").strip() for p in t.now)
            mark = f"  CUT OFF into {len(t.now)}: {pieces}"
        lines.append(f"  {n:>2}. {said!r}: " + " · ".join(parts) + mark)
    lines.append(
        f"  {len(turns)} turns: {cut} cut off, {merged} merged into the one before"
        + ("" if cut or merged else " — the same turns as recorded")
    )
    return "\n".join(lines)
