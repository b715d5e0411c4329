"""Turns the openai package's exceptions into the framework's errors, with readable messages
and the right ``recoverable`` flag (the framework's base classes do the retrying)."""

from __future__ import annotations

from typing import Any, TypeVar

from ...agents._retry import parse_retry_after
from ...agents.exceptions import ModelError
from ._client import ClientConfig

E = TypeVar("E", bound=ModelError)

_RECOVERABLE_STATUS = frozenset({408, 409, 425, 429})


def _server_message(body: object, fallback: str) -> str:
    """The ``error.message`` of an OpenAI error body (the client already unwrapped ``error``)."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            msg = inner.get("message")
            if isinstance(msg, str) and msg.strip():
                return msg.strip()
        elif isinstance(inner, str) and inner.strip():
            return inner.strip()
    if isinstance(body, str) and body.strip():
        return body.strip()[:300]
    return fallback


def _retry_after(e: Any) -> float | None:
    """The wait an error response asks for: ``retry-after-ms`` (OpenAI's) or ``Retry-After``."""
    headers = getattr(getattr(e, "response", None), "headers", None)
    if headers is None:
        return None
    millis = parse_retry_after(headers.get("retry-after-ms"))
    if millis is not None:
        return millis / 1000.0
    return parse_retry_after(headers.get("retry-after"))


def _transport_error_kind(e: BaseException) -> str | None:
    """``"timeout"`` or ``"transport"`` for an HTTP transport failure (httpx / httpx2) that
    escaped the openai wrapper, as happens while a streamed body is being read; else None."""
    names = {
        k.__name__
        for k in type(e).__mro__
        if k.__module__.split(".")[0] in ("httpx", "httpx2", "httpcore")
    }
    if "TimeoutException" in names:
        return "timeout"
    if names & {"TransportError", "StreamError"} or isinstance(e, ConnectionError):
        return "transport"
    return None


def map_error(e: BaseException, error_type: type[E], config: ClientConfig) -> E | None:
    """The framework error for ``e``, or None when ``e`` is not an API/transport failure."""
    import openai  # already imported by the client that raised

    url = config.base_url
    if isinstance(e, openai.APITimeoutError):
        return error_type(f"request to {url} timed out", recoverable=True)
    if isinstance(e, openai.APIConnectionError):
        cause = e.__cause__ or e.__context__
        detail = f": {type(cause).__name__}: {cause}" if cause is not None else ""
        return error_type(f"cannot reach {url}{detail}", recoverable=True)
    if isinstance(e, openai.APIStatusError):
        status = e.status_code
        detail = _server_message(e.body, e.message)
        if status in (401, 403):
            hint = (
                " (no key was given: set OPENAI_API_KEY or pass api_key=)"
                if not config.key_given
                else ""
            )
            return error_type(
                f"invalid API key for {url} (HTTP {status}: {detail}){hint}", recoverable=False
            )
        wait = _retry_after(e)
        if status == 429:
            return error_type(
                f"rate limited by {url} (HTTP 429: {detail})", recoverable=True, retry_after=wait
            )
        if status >= 500 or status in _RECOVERABLE_STATUS:
            return error_type(
                f"server error from {url} (HTTP {status}: {detail})",
                recoverable=True,
                retry_after=wait,
            )
        return error_type(
            f"{url} rejected the request (HTTP {status}: {detail})", recoverable=False
        )
    if isinstance(e, openai.APIError):  # an error event inside a stream, or an invalid response
        return error_type(
            f"error from {url}: {_server_message(e.body, e.message)}", recoverable=False
        )
    if isinstance(e, openai.OpenAIError):
        return error_type(f"OpenAI client error: {e}", recoverable=False)
    kind = _transport_error_kind(e)
    if kind == "timeout":
        return error_type(f"request to {url} timed out ({type(e).__name__})", recoverable=True)
    if kind == "transport":
        return error_type(f"connection to {url} failed: {type(e).__name__}: {e}", recoverable=True)
    return None
