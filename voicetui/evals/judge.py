"""An LLM judging whether a reply fulfils an intent ("asks the user to repeat"), with a verdict
and a reason. The embedded LLM by default; a hosted one when ``OPENAI_API_KEY`` is set (the
configured models decide: :func:`voicetui.plugins.selection.resolve`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..agents.llm import LLM, ChatContext

__all__ = ["JUDGE_INSTRUCTIONS", "Verdict", "judge_reply"]

JUDGE_INSTRUCTIONS = """\
You check a voice assistant's reply. You get the user's words, the reply, and what the reply \
must do. Answer with one line: PASS or FAIL, a colon, and a short reason."""

_VERDICT = re.compile(r"\b(PASS|FAIL)\b\s*[:.,-]?\s*(.*)", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str


async def judge_reply(llm: LLM, *, user: str, reply: str, intent: str) -> Verdict:
    """Ask ``llm`` whether ``reply`` to ``user`` does ``intent``. An answer that is neither
    PASS nor FAIL is a failure, with the answer as the reason."""
    ctx = ChatContext()
    ctx.add_message(role="system", content=JUDGE_INSTRUCTIONS)
    ctx.add_message(
        role="user",
        content=f"User: {user}\nReply: {reply}\nThe reply must: {intent}\nVerdict:",
    )
    text, _ = await llm.chat(chat_ctx=ctx, tool_choice="none").collect()
    match = _VERDICT.search(text)
    if match is None:
        return Verdict(False, f"the judge did not answer PASS or FAIL: {text.strip()[:120]!r}")
    reason = " ".join(match.group(2).split())[:200]
    return Verdict(match.group(1).upper() == "PASS", reason)
