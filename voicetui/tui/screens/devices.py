"""Pick the input and output audio devices (from ``runtime.list_devices()``)."""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, OptionList, Static
from textual.widgets.option_list import Option

from .tool_break import MODAL_CSS

DeviceChoice = tuple[int | str | None, int | str | None]
DEFAULT_ID = "default"


def device_id(device: dict[str, Any]) -> int | str:
    index = device.get("index")
    return index if isinstance(index, int) else str(device.get("name", ""))


def device_label(device: dict[str, Any], direction: str) -> str:
    name = str(device.get("name", "?"))
    index = device.get("index")
    host = device.get("hostapi")
    mark = " (system default)" if device.get(f"default_{direction}") else ""
    head = f"{index}: " if isinstance(index, int) else ""
    return f"{head}{name}{f' [{host}]' if host else ''}{mark}"


def usable(device: dict[str, Any], direction: str) -> bool:
    channels = device.get(f"max_{direction}_channels")
    return not isinstance(channels, int) or channels > 0


class DevicesScreen(ModalScreen[DeviceChoice | None]):
    DEFAULT_CSS = (
        "DevicesScreen {"
        + MODAL_CSS
        + """
        & > Vertical { height: 90%; max-height: 30; }
        .devices-list { height: 1fr; min-height: 3; }
    }
    """
    )
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, devices: list[dict[str, Any]]) -> None:
        super().__init__()
        self.devices = devices
        self._ids: dict[str, int | str | None] = {DEFAULT_ID: None}

    def _options(self, direction: str) -> list[Option]:
        options = [Option("System default", id=DEFAULT_ID)]
        for n, device in enumerate(self.devices):
            if usable(device, direction):
                option_id = f"dev-{n}"
                self._ids[option_id] = device_id(device)
                options.append(Option(device_label(device, direction), id=option_id))
        return options

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Audio devices", classes="modal-title")
            yield Label("Microphone")
            yield OptionList(*self._options("input"), id="devices-input", classes="devices-list")
            yield Label("Speaker")
            yield OptionList(*self._options("output"), id="devices-output", classes="devices-list")
            with Horizontal(classes="modal-buttons"):
                yield Button("Cancel", id="devices-cancel", compact=True)
                yield Button("Use these", id="devices-apply", variant="primary", compact=True)

    def on_mount(self) -> None:
        for list_id in ("#devices-input", "#devices-output"):
            option_list = self.query_one(list_id, OptionList)
            option_list.highlighted = 0
        self.query_one("#devices-input", OptionList).focus()

    def _choice(self, list_id: str) -> int | str | None:
        option = self.query_one(list_id, OptionList).highlighted_option
        if option is None or option.id is None:
            return None
        return self._ids.get(option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#devices-cancel")
    def _cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#devices-apply")
    def _apply(self) -> None:
        self.dismiss((self._choice("#devices-input"), self._choice("#devices-output")))
