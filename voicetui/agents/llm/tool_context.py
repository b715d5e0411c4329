"""Function tools: ``@function_tool`` turns a typed (async) function into a tool the LLM can call.

The argument schema is a pydantic model built from the signature; descriptions come from
``Annotated[..., Field(description=...)]`` and from the docstring's ``Args:`` section.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import typing
from collections.abc import Callable
from typing import Any, Literal, TypeAlias, TypeVar, overload

import docstring_parser
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic.fields import FieldInfo

F = TypeVar("F", bound=Callable[..., Any])
ToolChoice: TypeAlias = Literal["auto", "required", "none"] | dict[str, Any]


class ToolError(Exception):
    """Raise from a tool to report a failure to the LLM; the message is what the LLM sees."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class StopResponse(Exception):
    """Raise from a tool or ``on_user_turn_completed`` to end the turn without an agent reply."""


class ToolArgumentsError(ValueError):
    """The LLM's arguments for a tool are not valid JSON or do not match its schema."""


def is_run_context_type(hint: Any) -> bool:
    origin = typing.get_origin(hint) or hint
    return bool(getattr(origin, "__voicetui_run_context__", False))


class FunctionTool:
    """A callable tool with a name, a description and a pydantic model for its arguments."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        _bound_to: Any = None,
    ) -> None:
        self._fn = fn
        self._bound_to = _bound_to
        self.name = name or fn.__name__
        doc = docstring_parser.parse(inspect.getdoc(fn) or "")
        if description is None:
            parts = [doc.short_description or "", doc.long_description or ""]
            description = "\n\n".join(p for p in parts if p)
        self.description = description
        self._context_param, self.args_model = _build_args_model(fn, self.name, doc)
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    # Methods decorated inside an Agent subclass bind to the instance like functions do.
    def __get__(self, instance: Any, owner: type | None = None) -> FunctionTool:
        if instance is None:
            return self
        bound = FunctionTool.__new__(FunctionTool)
        bound.__dict__.update(self.__dict__)
        bound._bound_to = instance
        return bound

    def __repr__(self) -> str:
        return f"FunctionTool({self.name!r})"

    @property
    def parameters_schema(self) -> dict[str, Any]:
        schema = self.args_model.model_json_schema()
        _strip_titles(schema)
        schema.setdefault("properties", {})
        schema.setdefault("required", [])
        return schema

    def to_openai_schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters_schema,
            },
        }

    def parse_arguments(self, raw: str) -> dict[str, Any]:
        """Validate the LLM's JSON arguments; raises :class:`ToolArgumentsError` with a message
        that tells the LLM what was wrong."""
        try:
            data = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError as e:
            raise ToolArgumentsError(
                f"arguments are not valid JSON: {e.msg} at char {e.pos}"
            ) from e
        if not isinstance(data, dict):
            raise ToolArgumentsError("arguments must be a JSON object")
        try:
            model = self.args_model.model_validate(data)
        except ValidationError as e:
            errs = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
                for err in e.errors()
            )
            raise ToolArgumentsError(f"invalid arguments: {errs}") from e
        return {name: getattr(model, name) for name in type(model).model_fields}

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the underlying function directly (as a user would in a unit test)."""
        if self._bound_to is not None:
            args = (self._bound_to, *args)
        result = self._fn(*args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def invoke(self, context: Any, arguments: dict[str, Any]) -> Any:
        """Call with validated arguments, passing the run context where the signature asks.

        A plain ``def`` tool runs in a worker thread (``asyncio.to_thread``), so that a slow
        one does not stop the session; it must not touch the session (use ``async def`` for
        tools that do)."""
        kwargs = dict(arguments)
        if self._context_param is not None:
            kwargs[self._context_param] = context
        if inspect.iscoroutinefunction(self._fn):
            return await self(**kwargs)
        args = (self._bound_to,) if self._bound_to is not None else ()
        result = await asyncio.to_thread(self._fn, *args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result


@overload
def function_tool(fn: F, /) -> FunctionTool: ...


@overload
def function_tool(
    fn: None = None, /, *, name: str | None = None, description: str | None = None
) -> Callable[[Callable[..., Any]], FunctionTool]: ...


def function_tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
) -> FunctionTool | Callable[[Callable[..., Any]], FunctionTool]:
    """Make ``fn`` a tool. Usable bare (``@function_tool``) or with ``name=``/``description=``."""

    def deco(f: Callable[..., Any]) -> FunctionTool:
        return FunctionTool(f, name=name, description=description)

    return deco(fn) if fn is not None else deco


def find_function_tools(obj: Any) -> list[FunctionTool]:
    """The tools defined as methods on ``obj``'s class (bound to ``obj``), base classes first."""
    cls = type(obj)
    names: dict[str, None] = {}
    for klass in reversed(cls.__mro__):
        for attr in vars(klass):
            names.setdefault(attr, None)
    return [
        getattr(obj, attr)
        for attr in names
        if isinstance(inspect.getattr_static(cls, attr, None), FunctionTool)
    ]


def _build_args_model(
    fn: Callable[..., Any], tool_name: str, doc: docstring_parser.Docstring
) -> tuple[str | None, type[BaseModel]]:
    sig = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception as e:  # unresolved forward references in a user's module
        raise TypeError(f"tool {tool_name!r}: cannot resolve type hints ({e})") from e
    doc_params = {p.arg_name: p.description for p in doc.params}
    fields: dict[str, Any] = {}
    context_param: str | None = None
    for i, (pname, param) in enumerate(sig.parameters.items()):
        if i == 0 and pname in ("self", "cls"):
            continue
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"tool {tool_name!r}: *args/**kwargs are not supported")
        hint = hints.get(pname, Any)
        if is_run_context_type(hint):
            context_param = pname
            continue
        default: Any = ... if param.default is inspect.Parameter.empty else param.default
        desc = doc_params.get(pname)
        base: Any = hint
        metadata: tuple[Any, ...] = ()
        if typing.get_origin(hint) is typing.Annotated:
            base, *rest = typing.get_args(hint)
            metadata = tuple(rest)
        field_info = next((m for m in metadata if isinstance(m, FieldInfo)), None)
        if field_info is not None:
            # never mutate the user's FieldInfo: it may be shared (a type alias used by several
            # tools), and pydantic ignores attributes assigned after construction anyway
            overrides: dict[str, Any] = {}
            if field_info.description is None and desc:
                overrides["description"] = desc
            if default is not ...:
                overrides["default"] = default
            fields[pname] = (hint, Field(**overrides))
            continue
        plain_desc = next((m for m in metadata if isinstance(m, str)), None) or desc
        fields[pname] = (base, Field(default, description=plain_desc))
    model = create_model(  # type: ignore[call-overload]
        f"{tool_name}_args", __config__=ConfigDict(extra="forbid"), **fields
    )
    return context_param, model


def _strip_titles(schema: Any) -> None:
    if isinstance(schema, dict):
        schema.pop("title", None)
        for key, value in list(schema.items()):
            if key == "properties" and isinstance(value, dict):
                for prop in value.values():
                    _strip_titles(prop)
            else:
                _strip_titles(value)
    elif isinstance(schema, list):
        for v in schema:
            _strip_titles(v)
