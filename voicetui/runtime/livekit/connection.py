"""The console's end of one agent connection: voicetui listens on 127.0.0.1, the agent dials in.

:class:`ConsoleServer` accepts the agent's connection (a restarted agent dials in again: the
newer connection replaces the older), reads its messages in order and hands them to
``on_message``; :meth:`send` writes one; :meth:`request` sends a ``SessionRequest`` and waits
for the ``SessionResponse`` with its id."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable

from livekit.protocol.agent_pb import agent_session as pb

from . import wire

logger = logging.getLogger("voicetui.livekit")

REQUEST_TIMEOUT = 30.0


class AgentNotConnected(RuntimeError):
    """No agent process is connected (not started yet, or it exited)."""


class ConsoleServer:
    def __init__(
        self,
        *,
        on_message: Callable[[pb.AgentSessionMessage], None],
        on_disconnect: Callable[[], None] = lambda: None,
        host: str = "127.0.0.1",
    ) -> None:
        self._on_message = on_message
        self._on_disconnect = on_disconnect
        self._host = host
        self._server: asyncio.Server | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._pending: dict[str, asyncio.Future[pb.SessionResponse]] = {}

    @property
    def address(self) -> str:
        """``HOST:PORT`` for ``--connect-addr``."""
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"{host}:{port}"

    @property
    def connected(self) -> bool:
        return self._writer is not None and not self._writer.is_closing()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self._host, 0)

    async def wait_connected(self) -> None:
        await self._connected.wait()

    def expect_new_connection(self) -> None:
        """A restarted agent will dial in: :meth:`wait_connected` waits for it."""
        self._connected.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await self._drop_connection()
        self._writer = writer
        self._reader_task = asyncio.current_task()  # type: ignore[assignment]
        self._connected.set()
        logger.info("the LiveKit agent connected")
        try:
            while True:
                msg = await wire.read_message(reader)
                if msg is None:
                    break
                if msg.WhichOneof("message") == "response":
                    self._resolve(msg.response)
                    continue
                try:
                    self._on_message(msg)
                except Exception:
                    logger.exception("handling a message from the LiveKit agent failed")
        except wire.WireError as e:
            logger.warning("the LiveKit agent's connection is dropped: %s", e)
        except asyncio.CancelledError:
            pass  # closing (asyncio's server logs a handler that ends cancelled)
        finally:
            if self._writer is writer:
                self._writer = None
                self._fail_pending("the LiveKit agent disconnected")
                self._on_disconnect()
            writer.close()

    def _resolve(self, response: pb.SessionResponse) -> None:
        fut = self._pending.pop(response.request_id, None)
        if fut is not None and not fut.done():
            fut.set_result(response)

    def _fail_pending(self, message: str) -> None:
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(AgentNotConnected(message))

    def send(self, msg: pb.AgentSessionMessage) -> None:
        """Write ``msg`` (one ``write``: frames never interleave). Raises if not connected."""
        writer = self._writer
        if writer is None or writer.is_closing():
            raise AgentNotConnected("the LiveKit agent is not connected")
        writer.write(wire.encode(msg))

    async def request(self, wait: float = REQUEST_TIMEOUT, **one: object) -> pb.SessionResponse:
        """Send a request (``run_input=...``) and wait for its response; its error raises."""
        request_id, msg = wire.request(**one)
        fut: asyncio.Future[pb.SessionResponse] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = fut
        try:
            self.send(msg)
            response = await asyncio.wait_for(fut, wait)
        finally:
            self._pending.pop(request_id, None)
        if response.HasField("error") and response.error:
            raise RuntimeError(response.error)
        return response

    async def _drop_connection(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        self._fail_pending("the LiveKit agent reconnected")

    async def close(self) -> None:
        await self._drop_connection()
        task = self._reader_task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
