"""Text that comes from outside voicetui's own code — a model's reply, a tool's output, a
transcript, a server's error body, a log record, a recording file — made safe to show.

:func:`clean_text` removes what a terminal would act on instead of printing: escape sequences
as a whole (CSI, OSC — window title, clipboard —, DCS, APC...) and every other C0/C1 control
character except newline and tab (a carriage return ending a line becomes the newline alone).
:func:`map_strings` applies a text function to every string inside an event (pydantic models,
dataclasses, mappings, lists), copying only what changed. :class:`Sanitizer` is the two
together with a secret masker: what the runtime and the recording viewer apply to every event
before any front end sees it (see ``docs/security.md``).

Rich markup is a separate concern: widgets render this text as plain ``Text`` (never markup),
and notifications are posted with ``markup=False``.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel

T = TypeVar("T")

_ESCAPE_SEQUENCE = re.compile(
    # string sequences: OSC, DCS, SOS, PM, APC (7-bit or 8-bit introducer), up to BEL or ST
    r"(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    # control sequences: CSI parameters, intermediates, final byte
    r"|(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    # any other escape: intermediates and a final byte
    r"|\x1b[ -/]*[0-~]?"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
MAX_DEPTH = 16
"""Nesting deeper than this is left as is by :func:`map_strings` (events are shallow)."""


_JSON_ESCAPED_CONTROL = re.compile(
    r"(?<!\\)((?:\\\\)*)\\u(?:00[01][0-9a-fA-F]|007[fF]|00[89][0-9a-fA-F])"
)
"""A control character escaped in a JSON string (``\\u001b``), after an even number of
backslashes: tool arguments and outputs are JSON, and a renderer that decodes them would
bring the character back."""


def _drop_json_control(m: re.Match[str]) -> str:
    code = m.group(0)[-4:].lower()
    return m.group(0) if code in ("0009", "000a") else m.group(1)


def clean_text(text: str) -> str:
    """``text`` without escape sequences and control characters (newline and tab kept), raw
    or escaped in JSON strings."""
    if "\\u" in text:
        text = _JSON_ESCAPED_CONTROL.sub(_drop_json_control, text)
    if _CONTROL.search(text) is None:
        return text
    text = text.replace("\r\n", "\n")
    text = _ESCAPE_SEQUENCE.sub("", text)
    return _CONTROL.sub("", text)


def is_clean(text: str) -> bool:
    """No control character but newline and tab."""
    return _CONTROL.search(text) is None


def map_strings(obj: T, fn: Callable[[str], str], *, _depth: int = 0) -> T:
    """``obj`` with ``fn`` applied to every string in it: the fields of pydantic models and
    dataclasses, the keys and values of mappings, the items of lists and tuples. Objects in
    which nothing changed are returned as they are (no copy); other objects are left alone."""
    out: Any = obj
    if isinstance(obj, enum.Enum | bool | int | float | None):
        return obj
    if isinstance(obj, str):
        new = fn(obj)
        return obj if new == obj else new  # type: ignore[return-value]
    if _depth >= MAX_DEPTH:
        return obj
    depth = _depth + 1
    if isinstance(obj, BaseModel):
        changes = {}
        for name in type(obj).model_fields:
            value = getattr(obj, name, None)
            new_value = map_strings(value, fn, _depth=depth)
            if new_value is not value:
                changes[name] = new_value
        if changes:
            out = obj.model_copy(update=changes)
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes = {}
        for f in dataclasses.fields(obj):
            if not f.init:
                continue
            value = getattr(obj, f.name)
            new_value = map_strings(value, fn, _depth=depth)
            if new_value is not value:
                changes[f.name] = new_value
        if changes:
            out = dataclasses.replace(obj, **changes)
    elif isinstance(obj, Mapping):
        items = [
            (map_strings(k, fn, _depth=depth), map_strings(v, fn, _depth=depth))
            for k, v in obj.items()
        ]
        if any(
            nk is not k or nv is not v for (nk, nv), (k, v) in zip(items, obj.items(), strict=True)
        ):
            out = dict(items)
    elif isinstance(obj, list | tuple):
        values = [map_strings(v, fn, _depth=depth) for v in obj]
        if any(nv is not v for nv, v in zip(values, obj, strict=True)):
            out = values if isinstance(obj, list) else tuple(values)
    return out  # type: ignore[no-any-return]


class Sanitizer:
    """Controls cleaned and secrets masked, in every string of an event.

    ``mask``: the secret masker's text function (``SecretMasker.mask_text``); None: only
    controls are cleaned."""

    def __init__(self, mask: Callable[[str], str] | None = None) -> None:
        self._mask = mask

    def text(self, text: str) -> str:
        text = clean_text(text)
        return self._mask(text) if self._mask is not None else text

    def event(self, ev: T) -> T:
        return map_strings(ev, self.text)
