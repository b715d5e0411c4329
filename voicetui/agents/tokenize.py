"""Sentence splitting for streaming TTS: speak the first sentence while the LLM writes the next."""

from __future__ import annotations

import re

_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st vs etc e.g i.e approx dept est fig inc ltd no vol mt ft".split()
)
# a terminator run, optional closing quotes/brackets, then whitespace
_BOUNDARY = re.compile(r"([.!?…]+[\"'”’)\]]*)(\s+)|(\n\s*\n|\n)")
# the end of a clause: a comma, semicolon, colon or dash, then whitespace
_CLAUSE = re.compile(r"(?:[,;:]|\s[-–—]|[–—])[\"'”’)\]]*\s+")


def _is_abbreviation(text: str, end: int) -> bool:
    """True if the '.' ending at ``end`` belongs to an abbreviation, an initial or a number."""
    start = end
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    word = text[start:end].rstrip(".").lstrip("\"'“‘([").lower()  # "(Dr." is still "dr"
    if not word:
        return False
    if word in _ABBREVIATIONS:
        return True
    return len(word) == 1 and word.isalpha()


def _find_boundaries(text: str) -> list[int]:
    """Offsets (after the whitespace) where a new sentence starts."""
    cuts: list[int] = []
    for m in _BOUNDARY.finditer(text):
        if m.group(1) is not None:
            punct = m.group(1)
            if punct.startswith(".") and len(punct.rstrip("\"'”’)]")) == 1:
                if _is_abbreviation(text, m.start(1) + 1):
                    continue
            nxt = text[m.end() : m.end() + 1]
            if nxt and nxt.islower():
                continue
        cuts.append(m.end())
    return cuts


def split_sentences(text: str, *, min_length: int = 1) -> list[str]:
    """Split complete text into sentences (stripped; short ones merged into the next)."""
    out: list[str] = []
    pending = ""
    prev = 0
    for cut in [*_find_boundaries(text), len(text)]:
        piece = text[prev:cut]
        prev = cut
        pending = f"{pending} {piece.strip()}".strip() if pending else piece.strip()
        if pending and len(pending) >= min_length:
            out.append(pending)
            pending = ""
    if pending:
        if out:
            out[-1] = f"{out[-1]} {pending}"
        else:
            out.append(pending)
    return out


class SentenceStream:
    """Incremental splitter: ``push`` text deltas, get back the sentences completed so far.

    A sentence is only released once the text after it has started (so "3." in "3.14" or
    "Dr." are not cut), and is at least ``min_length`` characters long; ``flush`` releases the rest.

    ``first_clause_words``: the first piece of a segment (until a ``flush``) may end at a clause
    (a comma, semicolon, colon or dash) once it has that many words, so that speech can start
    before the LLM has written the whole first sentence. ``first_words``: the first piece ends
    after that many words even without punctuation (faster still, but the TTS then says them
    as a phrase of their own). None: sentences only.
    """

    def __init__(
        self,
        *,
        min_length: int = 12,
        first_clause_words: int | None = None,
        first_words: int | None = None,
    ) -> None:
        for name, value in (
            ("first_clause_words", first_clause_words),
            ("first_words", first_words),
        ):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be None or >= 1")
        self._buf = ""
        self._min_length = min_length
        self._first_clause_words = first_clause_words
        self._first_words = first_words
        self._first = True

    def push(self, delta: str) -> list[str]:
        self._buf += delta
        cuts = _find_boundaries(self._buf)
        out: list[str] = []
        start = 0
        for cut in cuts:
            if cut >= len(self._buf):  # need to see what follows the whitespace
                break
            sentence = self._buf[start:cut].strip()
            if len(sentence) < self._min_length:
                continue
            out.append(sentence)
            start = cut
        if not out and self._first:
            cut = self._first_clause() or self._first_n_words()
            if cut:
                out.append(self._buf[:cut].strip())
                start = cut
        if out:
            self._first = False
        self._buf = self._buf[start:]
        return out

    def _first_n_words(self) -> int:
        """Where the first ``first_words`` words end in the buffer, once the next one has begun
        (0: not yet, or not asked for)."""
        if self._first_words is None:
            return 0
        words = list(re.finditer(r"\S+", self._buf))
        if len(words) <= self._first_words:
            return 0
        cut = words[self._first_words].start()
        return cut if len(self._buf[:cut].strip()) >= self._min_length else 0

    def _first_clause(self) -> int:
        """Where the first clause long enough ends in the buffer (0: none yet)."""
        if self._first_clause_words is None:
            return 0
        for m in _CLAUSE.finditer(self._buf):
            if m.end() >= len(self._buf):  # what follows is not known yet
                break
            head = self._buf[: m.start()]
            if len(head.split()) >= self._first_clause_words and len(head) >= self._min_length:
                return m.end()
        return 0

    def flush(self) -> list[str]:
        rest = self._buf.strip()
        self._buf = ""
        self._first = True
        return [rest] if rest else []
