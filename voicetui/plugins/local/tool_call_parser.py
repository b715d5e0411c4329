"""Incremental extraction of tool calls from a small model's streamed text.

Qwen-style models answer a tool request in plain text: a JSON object
``{"name": ..., "arguments": {...}}``, sometimes inside ``<tool_call>…</tool_call>`` tags or a
Markdown code fence, sometimes after a few words of chatter. :class:`ToolCallParser` is fed the
text as it streams and returns what may be spoken (:class:`TextPiece`) and the calls it found
(:class:`ParsedToolCall`):

* text is released as soon as it clearly cannot start a tool call; a possible start (``{``, a
  partial tag, a fence) is held back until it is decided, so the JSON of a call is never spoken;
* ``<tool_call>`` / ``</tool_call>`` tags are never spoken;
* JSON that is not a tool call (malformed, unterminated at the end, or another shape) is text;
* after a call, more calls may follow; any other text after a call is dropped (the model tends
  to invent the tool's result) and :attr:`ToolCallParser.finished` turns true so the caller can
  stop the generation.

The result does not depend on how the text is split into chunks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypeAlias

__all__ = ["ParsedToolCall", "ParserEvent", "TextPiece", "ToolCallParser", "parse_all"]

_OPEN_TAG = "<tool_call>"
_CLOSE_TAG = "</tool_call>"
_TAGS = (_OPEN_TAG, _CLOSE_TAG)
_FENCES = ("```json", "```")  # longest first: "```" alone is a prefix of "```json"
_WS = " \t\r\n"
DEFAULT_MAX_CALL_CHARS = 8192


@dataclass(frozen=True)
class TextPiece:
    """Text that may be spoken."""

    text: str


@dataclass(frozen=True)
class ParsedToolCall:
    """A complete tool call; ``arguments`` is JSON text of an object."""

    name: str
    arguments: str


ParserEvent: TypeAlias = TextPiece | ParsedToolCall


class _NeedMore(Exception):
    """The held text cannot be decided yet."""


class ToolCallParser:
    """Feed streamed text with :meth:`feed`, then call :meth:`flush` once at the end."""

    def __init__(self, *, max_call_chars: int = DEFAULT_MAX_CALL_CHARS) -> None:
        self._buf = ""
        self._after_call = False
        self._after_tag = False  # whitespace right after an opening tag is not spoken
        self._finished = False
        self._max_call_chars = max_call_chars
        self._calls = 0

    @property
    def finished(self) -> bool:
        """True once non-call text followed a call: nothing more will be returned."""
        return self._finished

    @property
    def calls_found(self) -> int:
        return self._calls

    def feed(self, text: str) -> list[ParserEvent]:
        if self._finished or not text:
            return []
        self._buf += text
        return self._process(final=False)

    def flush(self) -> list[ParserEvent]:
        """End of the stream: whatever is still held is decided now."""
        if self._finished:
            return []
        events = self._process(final=True)
        self._buf = ""
        return events

    # --- internals ------------------------------------------------------------------------
    def _process(self, *, final: bool) -> list[ParserEvent]:
        out: list[ParserEvent] = []
        text: list[str] = []

        def flush_text() -> None:
            if text:
                out.append(TextPiece("".join(text)))
                text.clear()

        buf = self._buf
        pos = 0
        while pos < len(buf):
            if self._after_call or self._after_tag:
                # between calls: only whitespace, tags, fences and further calls are allowed
                while pos < len(buf) and buf[pos] in _WS:
                    pos += 1
                if pos == len(buf):
                    break
                self._after_tag = False
            start = _next_candidate(buf, pos) if not self._after_call else pos
            if start > pos:
                text.append(buf[pos:start])
                pos = start
            if pos == len(buf):
                break
            try:
                kind, end, value = self._classify(buf, pos, final=final)
            except _NeedMore:
                break
            if kind == "call":
                assert isinstance(value, ParsedToolCall)
                flush_text()
                out.append(value)
                self._calls += 1
                self._after_call = True
                pos = end
            elif kind == "skip":  # a tag or a fence around a call: never spoken
                self._after_tag = buf.startswith(_OPEN_TAG, pos)
                pos = end
            elif self._after_call:  # any other text after a call ends the parse
                self._finished = True
                self._buf = ""
                flush_text()
                return out
            else:  # text: release up to ``end`` and go on scanning after it
                text.append(buf[pos:end])
                pos = end
        self._buf = buf[pos:]
        if final and self._buf:
            if not self._after_call:
                text.append(self._buf)
            self._buf = ""
        flush_text()
        return out

    def _classify(self, buf: str, pos: int, *, final: bool) -> tuple[str, int, ParserEvent | None]:
        """Decide what starts at ``pos``: ("call", end, call), ("skip", end, None) for a tag or
        a closing fence, or ("text", end, None) for text up to ``end``."""
        rest = buf[pos:]
        for tag in _TAGS:
            if rest.startswith(tag):
                return "skip", pos + len(tag), None
        if any(tag.startswith(rest) for tag in _TAGS) and not final:
            raise _NeedMore
        if rest.startswith("`"):
            return self._classify_fence(buf, pos, final=final)
        if rest.startswith("{"):
            return self._classify_object(buf, pos, pos, final=final)
        return "text", pos + 1, None

    def _classify_fence(
        self, buf: str, pos: int, *, final: bool
    ) -> tuple[str, int, ParserEvent | None]:
        rest = buf[pos:]
        for fence in _FENCES:
            if fence.startswith(rest) and len(rest) < len(fence) and not final:
                raise _NeedMore
            if not rest.startswith(fence):
                continue
            if self._after_call and fence == "```":
                return "skip", pos + len(fence), None  # the closing fence of a call
            i = pos + len(fence)
            while i < len(buf) and buf[i] in _WS:
                i += 1
            if i == len(buf):
                if final:
                    break
                raise _NeedMore
            if buf[i] == "{":
                kind, end, value = self._classify_object(buf, i, pos, final=final)
                if kind == "call":
                    return kind, end, value
            break
        # not a fenced call: the backticks are text
        end = pos
        while end < len(buf) and buf[end] == "`":
            end += 1
        return "text", end, None

    def _classify_object(
        self, buf: str, obj: int, pos: int, *, final: bool
    ) -> tuple[str, int, ParserEvent | None]:
        """``buf[obj]`` is ``{`` (``pos`` <= ``obj`` is where the held text starts)."""
        i = obj + 1
        while i < len(buf) and buf[i] in _WS:
            i += 1
        if i == len(buf):
            if final:
                return "text", len(buf), None
            raise _NeedMore
        if buf[i] != '"':  # "{x}", "{}", "{ 1": not a JSON object with keys
            return "text", obj + 1, None
        end = _object_end(buf, obj, self._max_call_chars)
        if end is None:
            if len(buf) - obj > self._max_call_chars or final:
                return "text", obj + 1, None
            raise _NeedMore
        if end < 0:  # longer than the cap: text
            return "text", obj + 1, None
        call = _as_tool_call(buf[obj:end])
        if call is None:
            return "text", end, None
        return "call", end, call


def _next_candidate(buf: str, pos: int) -> int:
    """Index of the first character at or after ``pos`` that may start a tag, fence or call."""
    best = len(buf)
    for ch in "{<`":
        i = buf.find(ch, pos, best)
        if i != -1:
            best = i
    return best


def _object_end(buf: str, obj: int, cap: int) -> int | None:
    """Index just past the ``}`` closing the object at ``buf[obj]``; None if not yet closed,
    -1 if it runs past ``cap`` characters."""
    depth = 0
    in_str = False
    esc = False
    limit = min(len(buf), obj + cap)
    for i in range(obj, limit):
        ch = buf[i]
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
    if len(buf) > limit:
        return -1
    return None


def _as_tool_call(raw: str) -> ParsedToolCall | None:
    try:
        data, _ = json.JSONDecoder().raw_decode(raw)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("function"), dict):  # {"type": "function", "function": {...}}
        data = data["function"]
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        return None
    for key in ("arguments", "parameters"):
        if key in data:
            args = _arguments_text(data[key])
            return None if args is None else ParsedToolCall(name.strip(), args)
    return None


def _arguments_text(value: Any) -> str | None:
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    if value is None:
        return "{}"
    if isinstance(value, str):  # arguments given as a JSON string
        try:
            inner = json.loads(value) if value.strip() else {}
        except json.JSONDecodeError:
            return None
        return json.dumps(inner, ensure_ascii=False) if isinstance(inner, dict) else None
    return None


def parse_all(text: str) -> tuple[str, list[ParsedToolCall]]:
    """Parse a whole text at once: the speakable text and the calls."""
    parser = ToolCallParser()
    events = [*parser.feed(text), *parser.flush()]
    spoken = "".join(e.text for e in events if isinstance(e, TextPiece))
    return spoken, [e for e in events if isinstance(e, ParsedToolCall)]
