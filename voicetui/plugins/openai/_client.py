"""The shared AsyncOpenAI client: API key and base URL resolution, lazy creation, closing."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import openai

DEFAULT_BASE_URL = "https://api.openai.com/v1"
PLACEHOLDER_API_KEY = "no-key"
"""Sent when no key is configured: local OpenAI-compatible servers ignore the key, while the
real API answers 401, which becomes an "invalid API key" error naming OPENAI_API_KEY."""


@dataclass(frozen=True)
class ClientConfig:
    api_key: str
    base_url: str
    key_given: bool
    """False when no key was passed nor found in OPENAI_API_KEY (the placeholder is used)."""

    @property
    def is_openai(self) -> bool:
        return "api.openai.com" in self.base_url


def resolve_config(api_key: str | None, base_url: str | None) -> ClientConfig:
    """``api_key`` / ``base_url`` default from OPENAI_API_KEY / OPENAI_BASE_URL."""
    key = api_key or os.environ.get("OPENAI_API_KEY") or None
    url = base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
    return ClientConfig(
        api_key=key or PLACEHOLDER_API_KEY, base_url=url.rstrip("/"), key_given=key is not None
    )


class ClientHolder:
    """Owns the AsyncOpenAI client and closes it unless it was given by the caller.

    The ``openai`` package (about a second to import) is imported here, when a plugin is
    built, not when ``voicetui.plugins.openai`` is imported, and never inside a request
    attempt, whose ``conn_options.timeout`` it would eat. Creating the client binds nothing
    to an event loop."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        client: openai.AsyncOpenAI | None = None,
        timeout: float | None = None,
    ) -> None:
        self.config = config
        self._owned = client is None
        self._timeout = timeout
        self._client: openai.AsyncOpenAI | None = client or self._make()

    def _make(self) -> openai.AsyncOpenAI:
        import openai

        return openai.AsyncOpenAI(
            api_key=self.config.api_key,
            base_url=self.config.base_url,
            max_retries=0,  # the framework retries, per conn_options
            timeout=self._timeout if self._timeout is not None else 60.0,
        )

    def get(self) -> openai.AsyncOpenAI:
        if self._client is None:  # used again after aclose()
            self._client = self._make()
            self._owned = True
        return self._client

    def request_timeout(self, conn_timeout: float) -> float:
        """The HTTP timeout of one request: the constructor's ``timeout`` if set, else the
        call's ``conn_options.timeout`` (the framework's own deadline applies in any case)."""
        return self._timeout if self._timeout is not None else conn_timeout

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._owned:
            await client.close()
