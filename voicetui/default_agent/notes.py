"""Remember/recall notes, kept as JSON in the user's data dir (``notes.json``).

The store is small and synchronous (file I/O): the agent's tools call it in a worker thread.
Writes go to a temporary file first and replace the old one, so a crash never leaves half a
file; a corrupt file is set aside (``notes.json.corrupt``) rather than overwritten silently.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

MAX_NOTES = 1000
MAX_NOTE_LENGTH = 2000


NOTES_PATH_ENV = "VOICETUI_NOTES_PATH"


def default_notes_path() -> Path:
    """``$VOICETUI_NOTES_PATH`` if set (``voicetui eval`` gives each scenario its own), else
    ``notes.json`` in the user data dir."""
    override = os.environ.get(NOTES_PATH_ENV)
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_data_dir("voicetui")) / "notes.json"


@dataclass(frozen=True)
class Note:
    text: str
    created: float


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.casefold()) if len(w) > 1}


class NotesStore:
    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_notes_path()
        self._lock = threading.Lock()

    def load(self) -> list[Note]:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        try:
            data = json.loads(raw)
            return [Note(str(n["text"]), float(n["created"])) for n in data.get("notes", [])]
        except (ValueError, KeyError, TypeError, AttributeError):
            self.path.replace(self.path.with_name(self.path.name + ".corrupt"))
            return []

    def _save(self, notes: list[Note]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps({"notes": [asdict(n) for n in notes]}, indent=2, ensure_ascii=False)
        fd, tmp = tempfile.mkstemp(prefix=".notes-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(payload)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def remember(self, text: str) -> Note:
        text = " ".join(text.split())
        if not text:
            raise ValueError("there is nothing to remember")
        if len(text) > MAX_NOTE_LENGTH:
            raise ValueError(f"notes are limited to {MAX_NOTE_LENGTH} characters")
        with self._lock:
            notes = self.load()
            note = Note(text, time.time())
            notes.append(note)
            self._save(notes[-MAX_NOTES:])
        return note

    def recall(self, query: str | None = None, *, limit: int = 10) -> list[Note]:
        """Notes matching words of ``query`` (best first), or the latest ones without a query."""
        with self._lock:
            notes = self.load()
        if not query or not query.strip():
            return notes[-limit:][::-1]
        wanted = _words(query)
        scored = []
        for i, note in enumerate(notes):
            score = len(wanted & _words(note.text))
            if score == 0 and query.casefold().strip() in note.text.casefold():
                score = 1
            if score:
                scored.append((score, i, note))
        scored.sort(key=lambda t: (-t[0], -t[1]))
        return [note for _, _, note in scored[:limit]]

    def forget(self, query: str) -> int:
        """Delete the notes matching ``query`` as :meth:`recall` finds them; returns how many."""
        matches = {(n.text, n.created) for n in self.recall(query, limit=MAX_NOTES)}
        if not matches:
            return 0
        with self._lock:
            notes = self.load()
            kept = [n for n in notes if (n.text, n.created) not in matches]
            self._save(kept)
        return len(notes) - len(kept)
