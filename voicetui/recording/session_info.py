"""What goes into ``session.json`` and how any event object becomes JSON."""

from __future__ import annotations

import dataclasses
import enum
import math
import platform
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import PurePath
from typing import Any

from pydantic import BaseModel

from .. import __version__

FORMAT = "voicetui-recording/1"

KEY_PACKAGES = (
    "livekit",
    "livekit-api",
    "numpy",
    "pydantic",
    "openai",
    "textual",
    "soxr",
    "sounddevice",
    "faster-whisper",
    "piper-tts",
    "llama-cpp-python",
    "onnxruntime",
    "webrtcvad-wheels",
)


def to_jsonable(obj: Any, _depth: int = 0) -> Any:
    """Pydantic models, dataclasses, enums, mappings and sequences as plain JSON values;
    anything else as its ``repr``."""
    if _depth > 12:
        return "…"
    d = _depth + 1
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else str(obj)
    if isinstance(obj, enum.Enum):
        return to_jsonable(obj.value, d)
    if isinstance(obj, BaseModel):
        try:
            return obj.model_dump(mode="json")
        except Exception:
            return {k: to_jsonable(v, d) for k, v in obj.__dict__.items()}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name, None), d) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v, d) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [to_jsonable(v, d) for v in obj]
    if isinstance(obj, bytes | bytearray | memoryview):
        return f"<{len(obj)} bytes>"
    if isinstance(obj, PurePath):
        return str(obj)
    item = getattr(obj, "item", None)
    if callable(item):  # numpy scalars
        try:
            return to_jsonable(item(), d)
        except Exception:
            pass
    return repr(obj)[:500]


def versions() -> dict[str, Any]:
    packages: dict[str, str] = {}
    for name in KEY_PACKAGES:
        try:
            packages[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return {
        "voicetui": __version__,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": packages,
    }


def _safe(fn: Any) -> Any:
    try:
        return fn()
    except Exception:
        return None


def describe_model(model: object | None) -> dict[str, Any] | None:
    if model is None:
        return None
    cls = type(model)
    out: dict[str, Any] = {"class": f"{cls.__module__}.{cls.__qualname__}"}
    for attr in ("label", "model", "provider", "sample_rate"):
        value = _safe(lambda a=attr: getattr(model, a, None))
        if isinstance(value, str | int | float) and not callable(value):
            out[attr] = value
    return out


def describe_agent(agent: Any) -> dict[str, Any] | None:
    if agent is None:
        return None
    tools = _safe(lambda: [getattr(t, "name", None) or repr(t) for t in agent.tools])
    return {
        "class": f"{type(agent).__module__}.{type(agent).__qualname__}",
        "id": _safe(lambda: agent.id),
        "label": _safe(lambda: agent.label),
        "instructions": _safe(lambda: agent.instructions),
        "tools": tools,
    }


def describe_session(session: Any) -> dict[str, Any]:
    """Agent, models and options of an ``AgentSession`` (best effort: nothing here raises)."""
    agent = _safe(lambda: session.current_agent)
    models = {
        kind: describe_model(_safe(lambda k=kind: getattr(session, k)))
        for kind in ("stt", "vad", "llm", "tts")
    }
    if agent is not None:
        for kind in ("stt", "vad", "llm", "tts"):
            own = _safe(lambda k=kind: getattr(agent, k))
            if own is not None:
                models[f"agent_{kind}"] = describe_model(own)
    return {
        "agent": describe_agent(agent),
        "models": models,
        "options": to_jsonable(_safe(lambda: session.options)),
        "conn_options": to_jsonable(_safe(lambda: session.conn_options)),
    }


def model_objects(session: Any) -> list[object]:
    """The session's (and current agent's) model objects, to look for API keys in."""
    objs: list[object] = []
    agent = _safe(lambda: session.current_agent)
    for owner in (session, agent):
        if owner is None:
            continue
        for kind in ("stt", "vad", "llm", "tts"):
            m = _safe(lambda o=owner, k=kind: getattr(o, k))
            if m is not None:
                objs.append(m)
    return objs


FILES = {
    "audio.wav": "stereo: left = user (as the pipeline heard it), right = agent (as played)",
    "user.wav": "mono, the left channel",
    "agent.wav": "mono, the right channel",
    "events.jsonl": "one event per line: t (s since start), wall, type, event",
    "transcript.md": "the conversation",
}


def recording_info(
    *,
    id: str | None,
    started_wall: float,
    sample_rate: int,
    versions: dict[str, Any] | None,
    metadata: Mapping[str, Any],
    session: Any,
) -> dict[str, Any]:
    """The content of ``session.json`` (secrets still in: the writer masks them)."""
    info: dict[str, Any] = {
        "format": FORMAT,
        "id": id,
        "started_at": datetime.fromtimestamp(started_wall, UTC).isoformat(),
        "started_wall": started_wall,
        "stopped_at": None,
        "stopped_wall": None,
        "duration": None,
        "sample_rate": sample_rate,
        "files": dict(FILES),
        "versions": versions,
        "metadata": to_jsonable(metadata),
    }
    info.update(describe_session(session))
    return info
