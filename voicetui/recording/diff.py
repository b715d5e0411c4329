"""Comparing two recordings turn by turn (a replay against its original) and showing one as
text."""

from __future__ import annotations

import itertools
import textwrap
from dataclasses import dataclass, field
from statistics import mean

from ..conversation import Latency, ToolCall, Turn
from .load import Recording
from .transcript import fmt_time

_LAT = (
    ("e2e", "e2e"),
    ("EOU", "eou"),
    ("LLM TTFT", "llm_ttft"),
    ("tools", "tools"),
    ("TTS TTFB", "tts_ttfb"),
)


def _norm(text: str | None) -> str:
    return " ".join((text or "").lower().split())


def _tools_key(tools: list[ToolCall]) -> list[tuple[str, str, str, bool]]:
    return [c.key() for c in tools]


@dataclass
class TurnDiff:
    a: Turn | None
    b: Turn | None

    @property
    def user_equal(self) -> bool:
        return _norm(self.a.user if self.a else None) == _norm(self.b.user if self.b else None)

    @property
    def agent_equal(self) -> bool:
        return _norm(self.a.agent_text if self.a else None) == _norm(
            self.b.agent_text if self.b else None
        )

    @property
    def tools_equal(self) -> bool:
        return _tools_key(self.a.tools if self.a else []) == _tools_key(
            self.b.tools if self.b else []
        )


@dataclass
class Comparison:
    a: Recording
    b: Recording
    turns: list[TurnDiff] = field(default_factory=list)

    @property
    def user_equal(self) -> bool:
        return all(t.user_equal for t in self.turns)

    @property
    def agent_equal(self) -> bool:
        return all(t.agent_equal for t in self.turns)

    @property
    def tool_calls_equal(self) -> bool:
        return all(t.tools_equal for t in self.turns)

    def mean_latency(self, side: str, attr: str) -> float | None:
        values: list[float] = []
        for t in self.turns:
            turn = t.a if side == "a" else t.b
            v = getattr(turn.latency, attr) if turn is not None else None
            if v is not None:
                values.append(v)
        return mean(values) if values else None


def _pair(a: list[Turn], b: list[Turn]) -> list[TurnDiff]:
    """Turns before the first user message pair with each other, then user turns in order."""
    pre_a = [t for t in a if t.user is None]
    pre_b = [t for t in b if t.user is None]
    users_a = [t for t in a if t.user is not None]
    users_b = [t for t in b if t.user is not None]
    pairs = [TurnDiff(x, y) for x, y in itertools.zip_longest(pre_a, pre_b)]
    pairs += [TurnDiff(x, y) for x, y in itertools.zip_longest(users_a, users_b)]
    return pairs


def compare(a: Recording, b: Recording) -> Comparison:
    return Comparison(a, b, _pair(a.turns, b.turns))


def _tool_text(c: ToolCall) -> str:
    """The call as the LLM made it (arguments as raw JSON: a diff shows what differs)."""
    err = " (error)" if c.is_error else ""
    return f"{c.name}({c.arguments}) → {c.output or ''}{err}"


def _user_text(turn: Turn | None) -> str:
    if turn is None or not turn.user:
        return ""
    return f"{turn.user} [typed]" if turn.typed else turn.user


def _lat_text(lat: Latency, other: Latency | None = None) -> str:
    parts = []
    for label, attr in _LAT:
        v = getattr(lat, attr)
        if v is None:
            parts.append(f"{label} –")
            continue
        o = getattr(other, attr) if other is not None else None
        d = v - o if o is not None else 0.0
        delta = f" ({0.0 if abs(d) < 0.005 else d:+.2f})" if o is not None else ""
        parts.append(f"{label} {v:.2f}{delta}")
    return " · ".join(parts)


def _row(label: str, left: str, mark: str, right: str, col: int) -> list[str]:
    lw = textwrap.wrap(left, col) or [""]
    rw = textwrap.wrap(right, col) or [""]
    lines = []
    for i, (x, y) in enumerate(itertools.zip_longest(lw, rw, fillvalue="")):
        lines.append(f"{label if i == 0 else '':<8} {x:<{col}} {mark if i == 0 else ' '} {y}")
    return [line.rstrip() for line in lines]


def _mark(equal: bool, left: bool, right: bool) -> str:
    if equal:
        return "="
    if left and not right:
        return "<"
    if right and not left:
        return ">"
    return "≠"


def diff(a: Recording, b: Recording, *, width: int = 120) -> str:
    """Side by side: user and agent transcripts, tool calls (name, arguments, output) and the
    per-turn latency of two recordings. Marks: ``=`` same, ``≠`` different, ``<`` / ``>`` only
    on the left / right; latency on the right shows its difference to the left."""
    cmp = compare(a, b)
    col = max(20, (width - 12) // 2)
    out = [
        f"A: {a.directory.name}",
        f"B: {b.directory.name}",
        "",
        f"{'':<8} {'A':<{col}}   B",
    ]
    for i, td in enumerate(cmp.turns, 1):
        ta, tb = td.a, td.b
        when_a = fmt_time(ta.t) if ta else "—"
        when_b = fmt_time(tb.t) if tb else "—"
        title = f"── turn {i} · A {when_a} · B {when_b} "
        out.append(title + "─" * max(0, width - len(title)))
        if (ta and ta.user is not None) or (tb and tb.user is not None):
            ua, ub = (ta.user if ta else None), (tb.user if tb else None)
            mark = _mark(td.user_equal, bool(ua), bool(ub))
            out += _row("user", _user_text(ta), mark, _user_text(tb), col)
        tools_a, tools_b = (ta.tools if ta else []), (tb.tools if tb else [])
        for x, y in itertools.zip_longest(tools_a, tools_b):
            same = x is not None and y is not None and x.key() == y.key()
            out += _row(
                "tool",
                _tool_text(x) if x else "",
                _mark(same, x is not None, y is not None),
                _tool_text(y) if y else "",
                col,
            )
        xa, xb = (ta.agent_text if ta else ""), (tb.agent_text if tb else "")
        if ta and any(r.interrupted for r in ta.replies):
            xa += " [interrupted]"
        if tb and any(r.interrupted for r in tb.replies):
            xb += " [interrupted]"
        out += _row("agent", xa, _mark(td.agent_equal, bool(xa), bool(xb)), xb, col)
        la = ta.latency if ta else None
        lb = tb.latency if tb else None
        if (la and la.known()) or (lb and lb.known()):
            out += _row(
                "latency",
                _lat_text(la) if la else "",
                "│",
                _lat_text(lb, la) if lb else "",
                col,
            )
    out.append("─" * width)
    n = len(cmp.turns)

    def verdict(flags: list[bool]) -> str:
        bad = flags.count(False)
        return f"equal ({n} turns)" if not bad else f"{bad} of {n} turns differ"

    out.append(f"user transcripts: {verdict([t.user_equal for t in cmp.turns])}")
    out.append(f"agent replies:    {verdict([t.agent_equal for t in cmp.turns])}")
    calls_a = sum(len(t.a.tools) for t in cmp.turns if t.a)
    calls_b = sum(len(t.b.tools) for t in cmp.turns if t.b)
    tools = verdict([t.tools_equal for t in cmp.turns])
    out.append(f"tool calls:       {tools} (A {calls_a} calls, B {calls_b} calls)")
    lat = []
    for label, attr in _LAT:
        va, vb = cmp.mean_latency("a", attr), cmp.mean_latency("b", attr)
        if va is None and vb is None:
            continue
        sa = f"{va:.2f}" if va is not None else "–"
        sb = f"{vb:.2f}" if vb is not None else "–"
        lat.append(f"{label} {sa} → {sb} s")
    if lat:
        out.append("mean latency:     " + " · ".join(lat))
    return "\n".join(out) + "\n"


def format_recording(rec: Recording) -> str:
    """A recording as plain text: header, turns with tool calls and latency, warnings."""
    info = rec.session
    agent = info.get("agent") or {}
    models = info.get("models") or {}
    lines = [
        f"recording {rec.directory.name}",
        f"started {info.get('started_at', '?')} · {rec.duration:.1f} s of audio at "
        f"{rec.sample_rate} Hz · {len(rec.events)} events",
    ]
    if agent:
        lines.append(f"agent {agent.get('label')} ({agent.get('id')})")
    described = [
        f"{k}={m.get('model') or m.get('class')}" for k, m in models.items() if isinstance(m, dict)
    ]
    if described:
        lines.append("models " + ", ".join(described))
    lines.append("")
    for turn in rec.turns:
        if turn.user is not None:
            lines.append(f"[{fmt_time(turn.t)}] user: {_user_text(turn)}")
        for c in turn.tools:
            lines.append(f"[{fmt_time(c.t)}]   tool {_tool_text(c)}")
        for r in turn.replies:
            flag = " [interrupted]" if r.interrupted else ""
            lines.append(f"[{fmt_time(r.t)}] agent: {r.text}{flag}")
        if turn.latency.known():
            lines.append(f"           latency {_lat_text(turn.latency)}")
    for w in rec.warnings:
        lines.append(f"warning: {w}")
    return "\n".join(lines) + "\n"
