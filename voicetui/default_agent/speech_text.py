"""Make a model's streamed reply fit to be spoken: no Markdown, list bullets, line breaks or
emoji, and no "Sure, here's a joke:" preamble.

:class:`SpeakableText` is fed the reply as it streams and returns what may be spoken. It holds
back only the opening of the reply until it knows whether it is a preamble (at most
:data:`PREAMBLE_WINDOW` characters, or less when a sentence ends first), then passes text
through as it comes, cleaned piece by piece.
"""

from __future__ import annotations

import re

__all__ = ["PREAMBLE_WINDOW", "SpeakableText", "speakable"]

PREAMBLE_WINDOW = 48
_PREAMBLE = re.compile(
    r"^\s*(?:(?:sure|certainly|of course|okay|ok|absolutely|alright|great)[,!.]?\s*)?"
    r"(?:here(?:'s| is| are| you go)\b[^.!?:\n]*[:!.]|"
    r"(?:sure|certainly|of course|absolutely)[!.]\s*)",
    re.IGNORECASE,
)
_EMOJI = re.compile(
    "[\U0001f000-\U0001faff\U00002600-\U000027bf\U0001f900-\U0001f9ff\U00002190-\U000021ff"
    "\U00002b00-\U00002bff\ufe0f\u200d]"
)
_MARKUP = re.compile(r"\*\*|__|\*|`+|#+\s?|~~|\[|\]\([^)]*\)|\]")
_BULLET = re.compile(r"^(?:[-•*]|\d+[.)])\s+")
_SENTENCE_END = re.compile(r"[.!?:](?:\s|$)")


def _clean(text: str) -> str:
    return _MARKUP.sub("", _EMOJI.sub("", text))


class SpeakableText:
    """Feed pieces with :meth:`feed`, then call :meth:`flush` once at the end."""

    def __init__(self) -> None:
        self._head: str | None = ""  # None once the opening is decided
        self._pending_break = False
        self._last = ""
        self._line_start = ""
        self._at_line_start = True
        self._dropped = ""
        self._stripped = False
        self._json = False
        self._brace = ""

    def feed(self, piece: str) -> str:
        if self._json:
            return ""
        piece, self._brace = self._brace + piece, ""
        if '{"' in piece:
            # JSON is never speech (a tool call the model wrote as text): the reply ends here
            self._json = True
            piece = piece.split('{"', 1)[0]
        elif piece.endswith("{"):
            piece, self._brace = piece[:-1], "{"  # decided by the next piece
        if self._head is not None:
            self._head += piece
            while True:
                head = self._head
                if len(head) < PREAMBLE_WINDOW and not _SENTENCE_END.search(head):
                    return ""
                match = _PREAMBLE.match(head)
                if match is not None and not self._stripped and match.end() < len(head):
                    # "Sure! " then maybe "Here's a joke:": decide the rest on its own
                    self._stripped, self._dropped = True, head[: match.end()]
                    self._head = head[match.end() :]
                    continue
                if match is not None and not head[match.end() :].strip():
                    self._stripped, self._dropped = True, head
                    self._head = ""
                    return ""
                self._head = None
                return self._emit(head[match.end() :] if match else head)
        return self._emit(piece)

    def flush(self) -> str:
        brace, self._brace = ("" if self._json else self._brace), ""
        if self._head is None:
            return self._emit(brace, final=True)
        head, self._head = self._head + brace, None
        if not head.strip() and not self._last:
            head = self._dropped  # the reply was only "Sure!": say that
        match = _PREAMBLE.match(head)
        rest = head[match.end() :] if match and head[match.end() :].strip() else head
        return self._emit(rest, final=True)

    def _emit(self, text: str, *, final: bool = False) -> str:
        """Clean ``text``; a line's first characters are held until a bullet or number at its
        start can be told (so "- item" streamed as "-", " item" loses its dash)."""
        out: list[str] = []
        parts = re.split(r"\n+", self._line_start + text)
        self._line_start = ""
        for i, part in enumerate(parts):
            if i > 0:
                self._pending_break = self._at_line_start = True
            if self._at_line_start:
                if not final and i == len(parts) - 1 and len(part.lstrip()) < 4:
                    self._line_start = part  # the opening of the last line: decide later
                    break
                part = _BULLET.sub("", part.lstrip(), count=1)
                if not part.strip():
                    continue
                self._at_line_start = False
            cleaned = _clean(part)
            if not cleaned:
                continue
            if self._pending_break and self._last:
                cleaned = cleaned.lstrip()
                out.append(" " if self._last.rstrip()[-1:] in ".!?,;:" else ". ")
            self._pending_break = False
            out.append(cleaned)
            self._last = cleaned if cleaned.strip() else self._last
        return re.sub(r" {2,}", " ", "".join(out))


def speakable(text: str) -> str:
    """A whole reply made speakable at once."""
    converter = SpeakableText()
    return (converter.feed(text) + converter.flush()).strip()
