"""The thread that owns a llama.cpp model: loading, prompt rendering, priming and generation.

Every call into llama.cpp happens on one dedicated thread (a single-worker executor), so there
is one generation at a time and the event loop never blocks. Generated text goes back through a
``sink`` callback (the caller makes it thread-safe); a ``threading.Event`` stops a generation
between two tokens.
"""

from __future__ import annotations

import codecs
import concurrent.futures as cf
import contextlib
import ctypes
import io
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from voicetui.agents.exceptions import LLMError

logger = logging.getLogger("voicetui.plugins.local.llama")
_llama_log = logging.getLogger("voicetui.plugins.local.llama.cpp")

T = TypeVar("T")
Message = dict[str, Any]
"""A chat-template message: ``role`` and ``content``, and ``tool_calls`` on an assistant turn."""


@dataclass(frozen=True)
class Steering:
    """How a generation is steered toward or away from tool calls.

    ``prefix``: text the reply is made to start with (evaluated as part of the prompt and sent
    to the sink first), e.g. the opening of a tool call whose arguments the model then writes.
    ``no_calls``: the model may not start a tool call (the template's ``<tool_call>`` token is
    banned, and so is a reply opening with a JSON object, the 0.5B model's other way of
    calling a tool)."""

    prefix: str = ""
    no_calls: bool = False


Sink = Callable[[str | None], None]
"""Receives text pieces, then ``None`` once the generation is over (always, even on error)."""
OnStart = Callable[[int], None]
"""Called on the worker thread when a generation starts, with the number of prompt tokens it
evaluates (those not already in the cache)."""

INSTALL_HINT = "pip install 'voicetui[local]'"
_log_callback: Any = None  # the ctypes callback must outlive every model


def import_llama_cpp() -> ModuleType:
    """``llama_cpp``, with llama.cpp's own logging routed to Python logging (nothing is printed
    to the terminal, which the TUI owns)."""
    global _log_callback
    try:
        import llama_cpp  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError as e:
        raise LLMError(
            f"the local LLM needs llama-cpp-python, which is not installed: {INSTALL_HINT}",
            recoverable=False,
        ) from e
    if _log_callback is None:

        @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
        def _on_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
            # ggml's levels: 1 debug, 2 info, 3 warn, 4 error, 5 continuation. Loading a model
            # prints ~150 info lines and warnings about the model file ("control-looking
            # token ... probably a bug in the model"): all chatter, so DEBUG; errors stay
            # errors, and _load logs one line of its own.
            if level == 4:
                _llama_log.error("%s", text.decode("utf-8", "replace").rstrip())
            elif _llama_log.isEnabledFor(logging.DEBUG):
                _llama_log.debug("%s", text.decode("utf-8", "replace").rstrip())

        _log_callback = _on_log
        llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))
    return llama_cpp


@dataclass(frozen=True)
class Sampling:
    temperature: float
    max_tokens: int
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    seed: int | None = None
    """None: a new random seed for every generation."""


def _tokens_opening_json(llm: Any) -> list[int]:
    """Every token whose text starts (after spaces) with ``{`` or a code fence: how the model
    opens a tool call written as plain JSON."""
    found: list[int] = []
    for token in range(llm.n_vocab()):
        text = llm.detokenize([token]).lstrip()
        if text.startswith((b"{", b"`")):
            found.append(token)
    return found


@dataclass(frozen=True)
class GenerationStats:
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop", "length" or "cancelled"
    dropped_messages: int = 0


class LlamaWorker:
    """Owns a ``llama_cpp.Llama`` and the thread that runs it. Methods named ``submit_*`` return
    a ``concurrent.futures.Future`` (await it with ``asyncio.wrap_future``)."""

    def __init__(
        self,
        *,
        n_ctx: int,
        n_threads: int,
        n_threads_batch: int | None = None,
        prime_next_turn: bool = True,
    ) -> None:
        self._n_ctx = n_ctx
        self._prime_next_turn = prime_next_turn
        self.n_threads = n_threads
        """Threads generating tokens."""
        self.n_threads_batch = n_threads_batch or n_threads
        """Threads reading the prompt."""
        self._executor = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="voicetui-llama")
        self._llm: Any = None  # touched only on the worker thread
        self._formatter: Any = None
        self._is_eog: Callable[[int], bool] = lambda token: False
        self._tool_call_token: int | None = None
        self._json_open_tokens: list[int] = []
        self._closed = False

    @property
    def loaded(self) -> bool:
        return self._llm is not None

    def _submit(self, fn: Callable[..., T], *args: Any) -> cf.Future[T]:
        if self._closed:
            raise LLMError("the local LLM is closed", recoverable=False)
        return self._executor.submit(fn, *args)

    def submit_load(
        self, load: Callable[[], Path], rebuild: Callable[[], Path] | None = None
    ) -> cf.Future[Path]:
        """Run ``load`` (which finds the model file: blocking I/O) then load the model. If the
        file does not load and ``rebuild`` is given, it rebuilds the file (from its packages)
        and the load is tried once more."""
        return self._submit(self._load, load, rebuild)

    def submit_prime(
        self, variants: Sequence[list[Message]], tools: list[dict[str, Any]]
    ) -> cf.Future[int]:
        return self._submit(self._prime, variants, tools)

    def submit_generate(
        self,
        messages: list[Message],
        tools: list[dict[str, Any]],
        sampling: Sampling,
        cancel: threading.Event,
        sink: Sink,
        on_start: OnStart | None = None,
        steering: Steering = Steering(),
    ) -> cf.Future[GenerationStats]:
        try:
            return self._submit(
                self._generate_to_sink, messages, tools, sampling, cancel, sink, on_start, steering
            )
        except BaseException:
            sink(None)
            raise

    def submit_barrier(self) -> cf.Future[None]:
        """Completes once every job submitted before it is done (the worker is free)."""
        return self._submit(lambda: None)

    def close(self) -> cf.Future[None]:
        """Free the model after the current job; no job is accepted afterwards."""
        if self._closed:
            done: cf.Future[None] = cf.Future()
            done.set_result(None)
            return done
        fut = self._executor.submit(self._free)
        self._closed = True
        # queued jobs still run (their callers wait for the end of their sink); the caller has
        # set their cancel events, so they end at once
        self._executor.shutdown(wait=False)
        return fut

    # --- on the worker thread -------------------------------------------------------------
    def _load(self, find: Callable[[], Path], rebuild: Callable[[], Path] | None = None) -> Path:
        llama_cpp = import_llama_cpp()  # first: no point assembling a model nothing can run
        path = find()
        if self._llm is not None:
            return path
        try:
            return self._load_file(llama_cpp, path)
        except LLMError as e:
            if rebuild is None:
                raise
            # the store trusts its stamp when the file's size and time are unchanged: a file
            # damaged in place passes that; rebuild it from its packages and try once more
            logger.warning("%s; rebuilding the model file from its packages", e.message)
            return self._load_file(llama_cpp, rebuild())

    def _load_file(self, llama_cpp: ModuleType, path: Path) -> Path:
        started = time.monotonic()
        try:
            # verbose=True keeps llama-cpp-python from redirecting the process's stdout/stderr
            # file descriptors while loading (that would eat the TUI's output); its prints go to
            # a discarded buffer and llama.cpp's log to Python logging instead.
            with (
                contextlib.redirect_stderr(io.StringIO()),
                contextlib.redirect_stdout(io.StringIO()),
            ):
                llm = llama_cpp.Llama(
                    model_path=str(path),
                    n_ctx=self._n_ctx,
                    n_threads=self.n_threads,
                    n_threads_batch=self.n_threads_batch,
                    verbose=True,
                )
            llm.verbose = False
        except Exception as e:
            raise LLMError(f"cannot load the model {path}: {e}", recoverable=False) from e
        logger.info(
            "loaded %s (%.0f MB, context %d tokens, %d threads) in %.1f s",
            path.name,
            path.stat().st_size / 1e6,
            llm.n_ctx(),
            self.n_threads,
            time.monotonic() - started,
        )
        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            logger.warning(
                "%s has no chat template: using ChatML (tools will not be described)", path
            )
            template = llama_cpp.llama_chat_format.CHATML_CHAT_TEMPLATE
        eos = llm.token_eos()
        bos = llm.token_bos()
        self._formatter = llama_cpp.llama_chat_format.Jinja2ChatFormatter(
            template=template,
            eos_token=llm._model.token_get_text(eos) if eos != -1 else "",
            bos_token=llm._model.token_get_text(bos) if bos != -1 else "",
        )
        vocab = llm._model.vocab
        tag = llm.tokenize(b"<tool_call>", add_bos=False, special=True)
        self._tool_call_token = tag[0] if len(tag) == 1 else None
        self._json_open_tokens = _tokens_opening_json(llm)
        self._is_eog = lambda token: bool(llama_cpp.llama_vocab_is_eog(vocab, token))
        self._llm = llm
        return path

    def _free(self) -> None:
        llm, self._llm = self._llm, None
        if llm is not None:
            llm.close()

    def _require_model(self) -> Any:
        if self._llm is None:
            raise LLMError("the local LLM is not loaded", recoverable=False)
        return self._llm

    def _tokens(self, messages: list[Message], tools: list[dict[str, Any]]) -> list[int]:
        rendered = self._formatter(messages=messages, tools=tools or None)
        ids: list[int] = self._llm.tokenize(
            rendered.prompt.encode("utf-8"), add_bos=False, special=True
        )
        return ids

    def _fit(
        self, messages: list[Message], tools: list[dict[str, Any]], max_tokens: int
    ) -> tuple[list[int], int]:
        """The prompt's tokens, dropping the oldest turns (never the system prompt) until it
        leaves ``max_tokens`` of room in the context."""
        budget = self._n_ctx - max_tokens
        msgs = list(messages)
        dropped = 0
        while True:
            tokens = self._tokens(msgs, tools)
            if len(tokens) <= budget:
                return tokens, dropped
            first = 1 if msgs and msgs[0]["role"] == "system" else 0
            if len(msgs) - first <= 1:
                raise LLMError(
                    f"the prompt ({len(tokens)} tokens) does not fit the context of "
                    f"{self._n_ctx} tokens minus {max_tokens} for the reply",
                    recoverable=False,
                )
            del msgs[first]
            dropped += 1
            while len(msgs) - first > 1 and msgs[first]["role"] != "user":
                del msgs[first]
                dropped += 1

    def _prime(self, variants: Sequence[list[Message]], tools: list[dict[str, Any]]) -> int:
        """Evaluate the prefix the prompt ``variants`` share (system prompt + tools), so that the
        next request only evaluates what follows. Returns the prefix's length in tokens."""
        llm = self._require_model()
        renders = [self._tokens(v, tools) for v in variants]
        prefix = renders[0]
        for other in renders[1:]:
            n = 0
            for a, b in zip(prefix, other, strict=False):
                if a != b:
                    break
                n += 1
            prefix = prefix[:n]
        if not prefix:
            return 0
        cached = llm._input_ids.tolist()
        if cached[: len(prefix)] == prefix and len(cached) >= len(prefix):
            return len(prefix)
        gen = llm.generate(prefix, temp=0.0)
        try:
            next(gen)  # evaluates the prefix (and samples one token, which is dropped)
        finally:
            gen.close()
        return len(prefix)

    def _no_calls_processor(self, prompt_length: int) -> Any:
        """A llama.cpp logits processor banning the start of a tool call."""
        import numpy as np

        banned_anywhere = [t for t in (self._tool_call_token,) if t is not None]
        banned_first = [*banned_anywhere, *self._json_open_tokens]

        banned_first_ids = np.array(banned_first, dtype=np.intc)

        def ban(input_ids: Any, scores: Any) -> Any:
            if len(input_ids) == prompt_length:
                scores[banned_first_ids] = -np.inf
            else:
                for token in banned_anywhere:
                    scores[token] = -np.inf
            return scores

        return import_llama_cpp().LogitsProcessorList([ban])

    def _generate_to_sink(
        self,
        messages: list[Message],
        tools: list[dict[str, Any]],
        sampling: Sampling,
        cancel: threading.Event,
        sink: Sink,
        on_start: OnStart | None,
        steering: Steering,
    ) -> GenerationStats:
        pieces: list[str] = []

        def collect(piece: str | None) -> None:
            if piece is not None:
                pieces.append(piece)
            sink(piece)

        try:
            stats = self._generate(messages, tools, sampling, cancel, collect, on_start, steering)
        finally:
            sink(None)
        text = "".join(pieces).strip()
        if self._prime_next_turn and stats.finish_reason == "stop" and not steering.prefix and text:
            if "<tool_call>" not in text:  # (a call's turn is rendered differently)
                with contextlib.suppress(RuntimeError, LLMError):  # closing: no new jobs
                    self._submit(self._prime_after_reply, messages, tools, text)
        return stats

    def _prime_after_reply(
        self, messages: list[Message], tools: list[dict[str, Any]], reply: str
    ) -> None:
        """After a reply, evaluate it and the chat template's header of the user's next turn
        (``<|im_end|>\n<|im_start|>user\n`` for Qwen), so the next request evaluates only the
        user's words and the assistant header. A separate job: it runs while the reply is
        spoken, and a request arriving meanwhile waits only for this small evaluation."""
        history = [*messages, {"role": "assistant", "content": reply}]
        try:
            n = self._prime([[*history, {"role": "user", "content": w}] for w in ("a", "b")], tools)
        except Exception as e:  # the next request evaluates it instead
            logger.debug("priming the next turn failed: %s", e)
            return
        logger.debug("primed %d tokens for the next turn", n)

    def _generate(
        self,
        messages: list[Message],
        tools: list[dict[str, Any]],
        sampling: Sampling,
        cancel: threading.Event,
        sink: Sink,
        on_start: OnStart | None = None,
        steering: Steering = Steering(),
    ) -> GenerationStats:
        llm = self._require_model()
        prefix_tokens: list[int] = (
            llm.tokenize(steering.prefix.encode("utf-8"), add_bos=False, special=True)
            if steering.prefix
            else []
        )
        tokens, dropped = self._fit(messages, tools, sampling.max_tokens + len(prefix_tokens))
        tokens = tokens + prefix_tokens
        if dropped:
            logger.info("dropped the %d oldest messages to fit the context", dropped)
        cached = 0
        for a, b in zip(llm._input_ids.tolist(), tokens, strict=False):
            if a != b:
                break
            cached += 1
        cached = min(cached, len(tokens) - 1)
        if cancel.is_set():
            return GenerationStats(len(tokens), 0, 0, "cancelled", dropped)
        if on_start is not None:
            on_start(len(tokens) - cached)
        llm.set_seed(sampling.seed if sampling.seed is not None else random.getrandbits(31))
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        if steering.prefix:
            sink(steering.prefix)
        produced = 0
        finish = "length"
        gen = llm.generate(
            tokens,
            temp=sampling.temperature,
            top_k=sampling.top_k,
            top_p=sampling.top_p,
            min_p=sampling.min_p,
            repeat_penalty=sampling.repeat_penalty,
            logits_processor=self._no_calls_processor(len(tokens)) if steering.no_calls else None,
        )
        try:
            for token in gen:
                if cancel.is_set():
                    finish = "cancelled"
                    break
                if self._is_eog(token):
                    finish = "stop"
                    break
                produced += 1
                piece = decoder.decode(llm.detokenize([token]))
                if piece:
                    sink(piece)
                if produced >= sampling.max_tokens:
                    break
        finally:
            gen.close()
        tail = decoder.decode(b"", final=True)
        if tail and finish != "cancelled":
            sink(tail)
        return GenerationStats(len(tokens), max(cached, 0), produced, finish, dropped)
