"""A model error ending a background task was already reported (an error event): it is logged
as one line, not as "task … failed" with a traceback; a bug still is."""

from __future__ import annotations

import asyncio
import logging

import pytest

from voicetui.agents.exceptions import STTError, TTSError
from voicetui.agents.utils.aio import TaskSet


async def test_model_errors_are_one_line_bugs_keep_their_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="voicetui.agents")
    tasks = TaskSet("test")

    async def fail(e: BaseException) -> None:
        raise e

    for e in (STTError("server unreachable"), TTSError("rate limited"), KeyError("bug")):
        tasks.create(fail(e), name=type(e).__name__)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    await tasks.aclose()
    model = [r for r in caplog.records if "ended:" in r.getMessage()]
    assert {r.getMessage().rsplit(": ", 1)[1] for r in model} == {
        "server unreachable",
        "rate limited",
    }
    assert all(r.exc_info is None and r.levelno == logging.INFO for r in model)
    (bug,) = [r for r in caplog.records if "failed" in r.getMessage()]
    assert bug.levelno == logging.ERROR and bug.exc_info is not None
