"""The controller's recording of its session: at most one :class:`~voicetui.recording.Recorder`
at a time, which hears the session's events itself and gets the runtime's own worth keeping
(modes, notices, tool breaks and re-runs, model loading, status, cut-off replies, room
updates) from here. Configured secrets never reach its files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from platformdirs import user_data_dir

from ..agents.voice import AgentSession
from ..config import Settings
from .api import (
    ModeChanged,
    ModelLoading,
    Notice,
    NoticeLevel,
    ReplyCutOff,
    RoomUpdate,
    RuntimeEvent,
    RuntimeStatus,
    ToolBreak,
    ToolRerun,
)

if TYPE_CHECKING:
    from ..recording import Recorder

RECORDED_RUNTIME_EVENTS = (
    ModeChanged,
    Notice,
    ToolBreak,
    ToolRerun,
    ModelLoading,
    RuntimeStatus,
    ReplyCutOff,
    RoomUpdate,
)
"""The runtime's own events a recording keeps (session events reach the recorder directly)."""


def secret_values(settings: Settings) -> list[str]:
    """Every configured secret (API keys, tokens, LiveKit secrets), to be masked wherever it
    would appear in a recording."""
    values: list[str] = []

    def walk(obj: Any) -> None:
        if isinstance(obj, dict):
            for name, value in obj.items():
                lowered = str(name).lower()
                if isinstance(value, str) and value:
                    if any(k in lowered for k in ("key", "token", "secret", "password")):
                        values.append(value)
                else:
                    walk(value)

    walk(settings.model_dump())
    return values


class SessionRecording:
    def __init__(self, settings: Settings, notice: Callable[[NoticeLevel, str], None]) -> None:
        self._settings = settings
        self._notice = notice
        self._recorder: Recorder | None = None

    @property
    def directory(self) -> str | None:
        """Where the recording goes (None: not recording)."""
        rec = self._recorder
        return str(rec.directory) if rec is not None else None

    @property
    def since(self) -> float | None:
        """Wall-clock start of the recording."""
        return self._recorder.started_at if self._recorder is not None else None

    def record(self, ev: RuntimeEvent) -> None:
        if self._recorder is not None and isinstance(ev, RECORDED_RUNTIME_EVENTS):
            self._recorder.record_event(ev)

    def attach(self) -> None:
        """The session's I/O changed: the same recording goes on with the new devices."""
        if self._recorder is not None and self._recorder.active:
            self._recorder.attach()

    async def start(
        self,
        session: AgentSession[Any],
        directory: str | None,
        *,
        metadata: dict[str, Any],
        mode: ModeChanged | None,
    ) -> str:
        """Start recording to a new folder in ``directory`` (default: the user's data folder);
        ``mode``: the I/O as the live header names it (how ``voicetui show`` names it too).
        Returns the recording's folder."""
        from ..recording import Recorder

        root = Path(directory) if directory else Path(user_data_dir("voicetui")) / "recordings"
        rec = Recorder(
            root,
            session=session,
            metadata={**metadata, "settings": self._settings.model_dump(mode="json")},
            on_error=lambda message: self._notice("error", f"recording: {message}"),
            secrets=secret_values(self._settings),
        )
        await rec.start()
        rec.attach()
        if mode is not None:
            rec.record_event(mode)
        self._recorder = rec
        return str(rec.directory)

    async def stop(self) -> str | None:
        """Stop and finish the recording; returns its folder (None: there was none)."""
        rec, self._recorder = self._recorder, None
        if rec is None:
            return None
        await rec.stop()
        return str(rec.directory)
