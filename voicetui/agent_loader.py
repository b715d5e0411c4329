"""``--agent path.py[:Name]``: load a user's agent from a Python file.

``Name`` is an ``Agent`` subclass (instantiated without arguments) or a function returning an
``Agent`` (sync or async, called without arguments). Without ``Name``, the first ``Agent``
subclass defined in the file is used. Problems are :class:`AgentLoadError` with a message meant
for the user (no traceback needed, except the file's own error when importing it fails).
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import sys
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from .agents.voice import Agent

AgentFactory = Callable[[], "Agent | Awaitable[Agent]"]
"""Makes the session's first agent (called on the session's loop)."""

DEFAULT_AGENT_SPEC = "voicetui.default_agent:DefaultAgent"

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class AgentLoadError(Exception):
    """The agent could not be loaded; the message says why in plain words."""


def split_spec(spec: str) -> tuple[str, str | None]:
    """``"dir/agent.py:Name"`` → (``"dir/agent.py"``, ``"Name"``); a colon that is part of the
    path (``C:\\agents\\a.py``) is kept."""
    path, sep, name = spec.rpartition(":")
    if sep and path and _IDENT.match(name):
        return path, name
    return spec, None


def _import_file(path: Path) -> ModuleType:
    module_name = f"voicetui_user_agent_{re.sub(r'[^0-9A-Za-z_]', '_', path.stem)}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise AgentLoadError(f"{path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # (dataclasses, pydantic and pickle look it up)
    folder = str(path.parent)
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)  # so the file can import its neighbours
    try:
        spec.loader.exec_module(module)
    except BaseException as e:
        sys.modules.pop(module_name, None)
        if added:
            sys.path.remove(folder)
        if isinstance(e, KeyboardInterrupt | SystemExit):
            raise
        tb = traceback.extract_tb(e.__traceback__)
        where = next((f"line {f.lineno}" for f in reversed(tb) if f.filename == str(path)), "")
        if isinstance(e, SyntaxError):
            where = f"line {e.lineno}"
        detail = f"{type(e).__name__}: {e}"
        raise AgentLoadError(
            f"importing {path} failed{f' at {where}' if where else ''}: {detail}"
        ) from e
    return module


def _agent_classes(module: ModuleType) -> list[type[Agent]]:
    return [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, Agent)
        and obj is not Agent
        and obj.__module__ == module.__name__
    ]


def _checked(result: Any, what: str) -> Agent:
    if not isinstance(result, Agent):
        raise AgentLoadError(f"{what} returned {type(result).__name__}, not an Agent")
    return result


def _factory_for(obj: Any, what: str) -> AgentFactory:
    if isinstance(obj, type):
        if not issubclass(obj, Agent):
            raise AgentLoadError(f"{what} is a class but not an Agent subclass")
        cls: Any = obj

        def make_instance() -> Agent:
            try:
                return _checked(cls(), f"{what}()")
            except TypeError as e:
                raise AgentLoadError(
                    f"{what}() failed: {e} (an agent given by class must take no arguments; "
                    "give a function returning the agent instead)"
                ) from e

        return make_instance
    if isinstance(obj, Agent):
        agent = obj
        return lambda: agent
    if callable(obj):
        fn = obj
        if inspect.iscoroutinefunction(fn):

            async def make_async() -> Agent:
                return _checked(await fn(), f"{what}()")

            return make_async

        def make_sync() -> Agent | Awaitable[Agent]:
            result = fn()
            if inspect.isawaitable(result):

                async def finish() -> Agent:
                    return _checked(await result, f"{what}()")

                return finish()
            return _checked(result, f"{what}()")

        return make_sync
    raise AgentLoadError(
        f"{what} is a {type(obj).__name__}; expected an Agent subclass or a function returning one"
    )


def load_agent(spec: str) -> AgentFactory:
    """The factory for ``spec`` (``path.py[:Name]``, or ``module:Name`` for an importable
    module, as :data:`DEFAULT_AGENT_SPEC`). Raises :class:`AgentLoadError`."""
    target, name = split_spec(spec.strip())
    if not target:
        raise AgentLoadError("--agent needs a file: --agent path/to/agent.py[:Name]")
    path = Path(target).expanduser()
    if path.suffix == ".py" or path.exists() or "/" in target or "\\" in target:
        if not path.exists():
            raise AgentLoadError(f"agent file not found: {path}")
        if path.is_dir():
            raise AgentLoadError(f"{path} is a directory; give the agent's .py file")
        module = _import_file(path.resolve())
        label = path.name
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as e:
            raise AgentLoadError(f"cannot import {target}: {e}") from e
        label = target
    if name is not None:
        if not hasattr(module, name):
            found = [c.__name__ for c in _agent_classes(module)]
            hint = f"; Agent subclasses there: {', '.join(found)}" if found else ""
            raise AgentLoadError(f"{label} has no {name!r}{hint}")
        return _factory_for(getattr(module, name), f"{label}:{name}")
    classes = _agent_classes(module)
    if not classes:
        raise AgentLoadError(
            f"{label} defines no Agent subclass; define one (class MyAgent(Agent): ...) or name "
            f"a function returning an agent: --agent {target}:make_agent"
        )
    return _factory_for(classes[0], f"{label}:{classes[0].__name__}")


async def make_agent(source: Agent | Callable[[], Any] | None, spec: str | None = None) -> Agent:
    """The session's first agent: ``source`` (an Agent, or a factory of one, sync or async),
    else the one ``spec`` designates (``--agent``), else ``DefaultAgent``."""
    if source is None:
        if spec:
            source = load_agent(spec)
        else:
            from .default_agent import DefaultAgent

            source = DefaultAgent
    if isinstance(source, Agent):
        return source
    result = source()
    if inspect.isawaitable(result):
        result = await result
    return _checked(result, "the agent factory")
