"""Keeping secrets out of recordings.

A :class:`SecretMasker` replaces, in any text it is given:

- every registered secret value (``add``), wherever it occurs;
- the string values of mapping keys that look secret (``api_key``, ``token``, ``LIVEKIT_API_SECRET``,
  ``password``...; the values are also registered, so they are masked elsewhere too);
- well-known credential shapes: OpenAI-style ``sk-...`` keys, JWTs (LiveKit access tokens),
  ``Bearer ...`` headers and ``key=value`` / ``"token": "..."`` pairs in free text.

Environment variables whose names look secret are registered when the masker is created, so a
key that reaches a message, a tool output or an error by any path is still masked.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

logger = logging.getLogger("voicetui.recording")

MASK = "***"

_SECRET_KEY = re.compile(r"key|token|secret|passw|pwd|credential|authorization|cookie", re.I)
# keys that match the pattern above but never hold credentials (only numbers or names)
_NOT_SECRET_KEYS = frozenset(
    {
        "completion_tokens",
        "prompt_tokens",
        "prompt_cached_tokens",
        "total_tokens",
        "tokens_per_second",
        "max_tokens",
        "max_completion_tokens",
        # the shell's working directories ("pwd" is also short for password, not here)
        "pwd",
        "oldpwd",
    }
)
_PATTERNS = [
    # OpenAI / Anthropic / generic "sk-" keys
    re.compile(r"\bsk-[A-Za-z0-9_\-]{12,}"),
    # JWTs (LiveKit access tokens among them)
    re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),
    # Authorization headers
    re.compile(r"(?i)(?<=\bbearer )[A-Za-z0-9_\-.=+/]{8,}"),
    # the password of a URL's credentials: scheme://user:PASSWORD@host
    re.compile(r"(?<=://)[^/\s:@]*:(?P<val>[^/\s@]+)(?=@)"),
    # key=value, key: value, "key": "value" in free text (URLs, logs, error messages)
    re.compile(
        r"(?i)(?<![A-Za-z0-9])(?:api[_-]?key|api[_-]?secret|secret|token|password|passwd)"
        r"(?P<sep>\"?\s*[:=]\s*\"?)(?P<val>[^\s\"'&,;}]{6,})"
    ),
]
MIN_SECRET_LENGTH = 4
"""Shorter values are not registered: masking every "a" would destroy the recording."""
_AUTO_MIN_LENGTH = 6


def is_secret_key(key: str) -> bool:
    return key.lower() not in _NOT_SECRET_KEYS and _SECRET_KEY.search(key) is not None


class SecretMasker:
    """Thread-safe: secrets are added on the session's thread and masked on the writer's."""

    def __init__(self, secrets: Iterable[str] = (), *, from_environment: bool = True) -> None:
        self._lock = threading.Lock()
        self._secrets: frozenset[str] = frozenset()
        self._regex: re.Pattern[str] | None = None
        if from_environment:
            for name, value in os.environ.items():
                if (
                    is_secret_key(name)
                    and len(value) >= _AUTO_MIN_LENGTH
                    and not os.path.isabs(value)  # a path (to a key file, say) is no secret
                ):
                    self.add(value)
        for s in secrets:
            self.add(s)

    def add(self, value: str) -> bool:
        """Register a secret value; returns False (and logs) if it is too short to mask."""
        value = value.strip()
        if len(value) < MIN_SECRET_LENGTH:
            if value:
                logger.warning("recording: a secret shorter than %d chars is not masked", 4)
            return False
        with self._lock:
            if value in self._secrets:
                return True
            secrets = self._secrets | {value}
            # longest first: a secret containing another is masked whole
            alts = sorted(secrets, key=len, reverse=True)
            self._regex = re.compile("|".join(re.escape(s) for s in alts))
            self._secrets = secrets
        return True

    def __contains__(self, value: object) -> bool:
        return value in self._secrets

    def mask_text(self, text: str) -> str:
        regex = self._regex
        if regex is not None:
            text = regex.sub(MASK, text)
        for pattern in _PATTERNS:
            if "val" in pattern.groupindex:  # only the value is secret
                text = pattern.sub(_mask_value, text)
            else:
                text = pattern.sub(MASK, text)
        return text

    def harvest(self, data: Any) -> None:
        """Register the string values of secret-looking keys found anywhere in ``data``."""
        if isinstance(data, Mapping):
            for k, v in data.items():
                if isinstance(k, str) and is_secret_key(k):
                    for s in _strings(v):
                        if len(s) >= _AUTO_MIN_LENGTH:
                            self.add(s)
                else:
                    self.harvest(v)
        elif isinstance(data, list | tuple):
            for v in data:
                self.harvest(v)
        elif isinstance(data, str) and data[:1] in "{[":
            parsed = _try_json(data)
            if parsed is not None:
                self.harvest(parsed)

    def mask(self, data: Any) -> Any:
        """A copy of JSON-like ``data`` with secret-keyed values replaced and text masked."""
        if isinstance(data, Mapping):
            out: dict[str, Any] = {}
            for k, v in data.items():
                key = str(k)
                if is_secret_key(key) and _has_string(v):
                    out[key] = MASK
                else:
                    out[key] = self.mask(v)
            return out
        if isinstance(data, list | tuple):
            return [self.mask(v) for v in data]
        if isinstance(data, str):
            if data[:1] in "{[":
                parsed = _try_json(data)
                if parsed is not None:
                    masked = self.mask(parsed)
                    if masked != parsed:
                        return json.dumps(masked, ensure_ascii=False)
            return self.mask_text(data)
        return data

    def scan_object(self, obj: object, *, depth: int = 2) -> None:
        """Register secrets held by an object's attributes (a model's ``api_key``, a client
        config's ``api_secret``...), a few levels deep."""
        if depth < 0 or obj is None or isinstance(obj, str | bytes | int | float | bool):
            return
        try:
            attrs = vars(obj)
        except TypeError:
            return
        for name, value in list(attrs.items()):
            if isinstance(value, str):
                if is_secret_key(name) and len(value) >= _AUTO_MIN_LENGTH:
                    self.add(value)
            elif not callable(value) and not name.startswith("__"):
                self.scan_object(value, depth=depth - 1)


def _mask_value(m: re.Match[str]) -> str:
    start, end = m.start("val") - m.start(), m.end("val") - m.start()
    text = m.group(0)
    return text[:start] + MASK + text[end:]


def _strings(v: Any) -> list[str]:
    if isinstance(v, str):
        return [v]
    if isinstance(v, Mapping):
        return [s for x in v.values() for s in _strings(x)]
    if isinstance(v, list | tuple):
        return [s for x in v for s in _strings(x)]
    return []


def _has_string(v: Any) -> bool:
    return bool(_strings(v)) if not isinstance(v, str) else bool(v)


def _try_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None
