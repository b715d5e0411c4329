"""What the app asks of the session: the commands behind the keys, the palette and the panels
(mute, push-to-talk, interrupt, recording, modes and rooms, devices, break on tool call,
re-running a tool, exporting). Each goes through the bridge; a switch the UI shows at once is
taken back if the command fails. A recording (read-only mode) refuses them, saying so once."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

from ..runtime.api import RoomDetails
from ..runtime.recording_view import READ_ONLY_MESSAGE
from .handlers import RuntimeHandlers
from .screens.devices import DeviceChoice, DevicesScreen
from .screens.prompts import ExportScreen, RerunScreen, RoomScreen
from .widgets.tools import ToolsPanel

REFUSE_REPEAT = 2.0
"""The same refusal is not shown again within this many seconds (a key held down)."""


class SessionActions(RuntimeHandlers):
    """The session commands of :class:`voicetui.tui.app.VoiceTUIApp`."""

    _refused_at: dict[str, float]
    _room_details: RoomDetails | None
    """The room details typed last (in memory only: the token never reaches a file)."""

    # --- read-only mode ---------------------------------------------------------------------
    def refuse(self, what: str) -> None:
        """Say once (not again for a held key) that a recording takes no commands."""
        now = time.monotonic()
        if now - self._refused_at.get(what, float("-inf")) < REFUSE_REPEAT:
            return
        self._refused_at[what] = now
        self.notify(READ_ONLY_MESSAGE, title=what, severity="warning", timeout=3)

    def action_refuse(self, what: str) -> None:
        self.refuse(what)

    # --- actions ----------------------------------------------------------------------------
    def _optimistic(self, attribute: str, value: bool) -> Callable[[], None]:
        """Show ``attribute = value`` at once; returns the undo for a failed command."""
        before = getattr(self, attribute)
        setattr(self, attribute, value)
        self.sync_controls()

        def undo() -> None:
            setattr(self, attribute, before)
            self.sync_controls()

        return undo

    def action_toggle_mute(self) -> None:
        muted = not self.mic_muted
        undo = self._optimistic("mic_muted", muted)
        self.bridge.command("mute", lambda: self.runtime.set_mic_muted(muted), undo=undo)

    def action_push_to_talk(self) -> None:
        undo = self._optimistic("ptt_open", not self.ptt_open)
        self.bridge.command("push-to-talk", self.runtime.push_to_talk, undo=undo)

    def action_cancel_push_to_talk(self) -> None:
        undo = self._optimistic("ptt_open", False)
        self.bridge.command("cancel push-to-talk", self.runtime.cancel_push_to_talk, undo=undo)

    def action_interrupt(self) -> None:
        self.bridge.command("interrupt", self.runtime.interrupt)

    def action_toggle_recording(self) -> None:
        if self.recording_dir is not None:
            self.bridge.command("stop recording", self.runtime.stop_recording)
            return

        def started(directory: str) -> None:
            self.notify(f"recording to {directory}", timeout=4)

        self.bridge.command("start recording", self.runtime.start_recording, started)

    def action_toggle_room(self) -> None:
        """F6: the room ↔ local audio (from text: the room)."""
        if self.io_mode == "room":
            self.switch_io_mode("local")
        else:
            self.switch_to_room()

    def action_toggle_text(self) -> None:
        """ctrl+t: text ↔ audio (back to the audio mode used last: local unless a room)."""
        self.switch_io_mode(self.last_audio_mode if self.io_mode == "text" else "text")

    @property
    def io_mode(self) -> str | None:
        return self.mode_event.mode if self.mode_event is not None else None

    def switch_io_mode(self, mode: Literal["local", "text", "room"]) -> None:
        if mode == "room":
            self.switch_to_room()
            return
        self.bridge.command(f"switch to {mode}", lambda: self.runtime.switch_mode(mode))

    def switch_to_room(self, *, ask: bool = False) -> None:
        """Switch to the configured room; ask for the details if there are none."""
        if ask or (self.status is not None and not self.status.room_configured):
            self._ask_room_details()
            return
        self.bridge.command(
            "switch to the room",
            lambda: self.runtime.switch_mode("room"),
            on_error=self._ask_room_details,
        )

    def _ask_room_details(self, reason: str | None = None) -> None:
        """The room dialog, filled with what was tried last (or the settings)."""
        st = self.status
        default_name = st.room_name if st is not None else "voicetui"
        previous = self._room_details or RoomDetails(
            url=(st.room_url or "") if st is not None else "", room=default_name
        )
        screen = RoomScreen(reason, previous=previous, default_room=default_name)
        self.push_screen(screen, self._join_room)

    def _join_room(self, details: RoomDetails | None) -> None:
        if details is None:
            return
        self._room_details = details  # (in memory only: the token never reaches a file)
        self.bridge.command(
            "join the room",
            lambda: self.runtime.switch_mode("room", details),
            on_error=self._ask_room_details,
        )

    def action_devices(self) -> None:
        def show(devices: list[dict[str, Any]]) -> None:
            self.push_screen(DevicesScreen(devices), self._select_devices)

        self.bridge.command("list devices", self.runtime.list_devices, show)

    def _select_devices(self, choice: DeviceChoice | None) -> None:
        if choice is not None:
            self.bridge.command(
                "select devices", lambda: self.runtime.select_devices(choice[0], choice[1])
            )

    def action_toggle_break(self) -> None:
        self.set_break(not self.break_on_tool_call)

    def set_break(self, enabled: bool) -> None:
        undo = self._optimistic("break_on_tool_call", enabled)
        self.bridge.command(
            "break on tool call", lambda: self.runtime.set_break_on_tool_call(enabled), undo=undo
        )

    def on_tools_panel_rerun_requested(self, msg: ToolsPanel.RerunRequested) -> None:
        if self.read_only:
            self.refuse("Re-run tool")
            return
        name = msg.record.call.name

        def run(arguments: str | None) -> None:
            if arguments is not None:
                self.bridge.command(
                    f"re-run {name}", lambda: self.runtime.rerun_tool(name, arguments)
                )

        self.push_screen(RerunScreen(name, msg.record.call.arguments), run)

    def on_tools_panel_break_toggled(self, msg: ToolsPanel.BreakToggled) -> None:
        if self.read_only:
            self.tools_panel.set_break(self.break_on_tool_call)
            return
        if msg.enabled != self.break_on_tool_call:
            self.set_break(msg.enabled)

    def action_export(self) -> None:
        def save(path: str | None) -> None:
            if path:
                self.bridge.command(
                    "export the transcript",
                    lambda: self.runtime.export_transcript(path),
                    lambda where: self.notify(f"transcript saved to {where}", timeout=5),
                )

        self.push_screen(ExportScreen("voicetui-transcript.json"), save)
