"""Reading scenario files: YAML with line numbers kept, so that a schema error names the file,
the line and the field (``suite.yaml:14: scenarios[2].turns[0].expect.tool: ...``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .scenario import Scenario, Suite

__all__ = ["EvalFileError", "LoadedScenario", "load_suite"]

Path_ = tuple[str | int, ...]


class EvalFileError(Exception):
    """A scenario file cannot be used; the message names the file, line and field."""


@dataclass(frozen=True)
class LoadedScenario:
    scenario: Scenario
    file: Path
    suite: Suite
    lines: dict[Path_, int] = field(default_factory=dict)


def _construct(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> Any:
    """The Python value of ``node``, recording the 1-based line of every value by its path."""
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.safe_load(yaml.serialize(key_node))
            out[key] = _construct(value_node, (*path, key), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, (*path, i), lines) for i, item in enumerate(node.value)]
    return yaml.safe_load(yaml.serialize(node))


def _known_parts(loc: tuple[str | int, ...], lines: dict[Path_, int]) -> list[str | int]:
    """``loc`` without what the file does not have (pydantic names union members there)."""
    parts: list[str | int] = []
    for part in loc:
        if (*parts, part) in lines or (isinstance(part, int) or not parts):
            parts.append(part)
    return parts


def _where(loc: tuple[str | int, ...], lines: dict[Path_, int]) -> int | None:
    """The line of the deepest part of ``loc`` the file has (a missing field: its parent)."""
    parts = _known_parts(loc, lines)
    while parts and tuple(parts) not in lines:
        parts.pop()
    return lines.get(tuple(parts))


def _field(loc: tuple[str | int, ...], lines: dict[Path_, int]) -> str:
    out = ""
    for part in _known_parts(loc, lines):
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(top level)"


def load_suite(path: Path) -> list[LoadedScenario]:
    """The scenarios of one file. Raises :class:`EvalFileError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise EvalFileError(f"{path}: cannot read it: {e.strerror or e}") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        raise EvalFileError(f"{path}{where}: not valid YAML: {problem}") from None
    if root is None:
        raise EvalFileError(f"{path}: the file is empty")
    lines: dict[Path_, int] = {}
    data = _construct(root, (), lines)
    try:
        suite = Suite.model_validate(data)
    except ValidationError as e:
        messages = []
        for err in e.errors():
            loc = tuple(err["loc"])
            line = _where(loc, lines)
            msg = err["msg"].removeprefix("Value error, ")
            messages.append(f"{path}{f':{line}' if line else ''}: {_field(loc, lines)}: {msg}")
        raise EvalFileError("\n".join(messages)) from None
    base = path.parent
    return [LoadedScenario(_resolved(s, base), path, suite, lines) for s in suite.scenarios]


def _resolved(scenario: Scenario, base: Path) -> Scenario:
    """WAV and recording paths relative to the scenario file."""
    turns = []
    for turn in scenario.turns:
        update: dict[str, Any] = {}
        if turn.wav is not None and not turn.wav.is_absolute():
            update["wav"] = base / turn.wav
        if turn.recording is not None and not turn.recording.dir.is_absolute():
            update["recording"] = turn.recording.model_copy(
                update={"dir": base / turn.recording.dir}
            )
        turns.append(turn.model_copy(update=update) if update else turn)
    return scenario.model_copy(update={"turns": turns})
