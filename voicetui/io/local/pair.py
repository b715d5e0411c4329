"""``LocalAudio``: a mic and a speaker used together, sharing one echo canceller and one event
emitter — what the app puts in ``session.input.audio`` / ``session.output.audio``::

    audio = LocalAudio(input_device="usb", output_device=None)
    audio.events.on("error", lambda ev: tui.notify(ev.message))  # device faults (see events.py)
    audio.events.on("levels", meters.update)
    session.input.audio, session.output.audio = audio.input, audio.output
    ...
    await audio.aclose()

Device faults are not the session's errors: the session keeps running (the input waits, the
output reports what was played) and the app shows ``error`` events from :attr:`events`
(``AgentSession._report_error`` is private; the app bridges the two if it wants them in one
log).
"""

from __future__ import annotations

from .capture import LocalAudioInput
from .devices import DeviceInfo, DeviceSpec
from .echo import EchoCanceller
from .events import LocalAudioEvents
from .playback import LocalAudioOutput


class LocalAudio:
    """``echo_cancellation``: run mic audio through WebRTC's audio processing with the speaker
    as reference (also noise suppression, high-pass filter and AGC); ``echo_warmup``: seconds
    after the agent starts speaking during which the mic is treated as echo (see
    :class:`EchoCanceller`). Rates: ``input_sample_rate`` / ``output_sample_rate`` are the
    pipeline's, ``device_sample_rate`` the devices' (None = their defaults)."""

    def __init__(
        self,
        *,
        input_device: DeviceSpec = None,
        output_device: DeviceSpec = None,
        input_sample_rate: int = 24000,
        output_sample_rate: int = 24000,
        device_sample_rate: int | None = 48000,
        latency: float | str = 0.02,
        echo_cancellation: bool = True,
        noise_suppression: bool = True,
        auto_gain_control: bool = True,
        echo_warmup: float = 0.3,
    ) -> None:
        self.events = LocalAudioEvents()
        self.echo: EchoCanceller | None = (
            EchoCanceller(
                echo_cancellation=echo_cancellation,
                noise_suppression=noise_suppression,
                high_pass_filter=True,
                auto_gain_control=auto_gain_control,
                warmup=echo_warmup,
            )
            if echo_cancellation or noise_suppression or auto_gain_control
            else None
        )
        self.input = LocalAudioInput(
            device=input_device,
            sample_rate=input_sample_rate,
            device_sample_rate=device_sample_rate,
            latency=latency,
            echo_canceller=self.echo,
            events=self.events,
        )
        self.output = LocalAudioOutput(
            device=output_device,
            sample_rate=output_sample_rate,
            device_sample_rate=device_sample_rate,
            latency=latency,
            echo_canceller=self.echo,
            events=self.events,
        )

    def start(self) -> None:
        """Open both devices now (else they open on first use)."""
        self.input.start()
        self.output.start()

    async def wait_open(self) -> None:
        """Until both device streams run (use with ``asyncio.timeout``)."""
        await self.input.wait_open()
        await self.output.wait_open()

    @property
    def muted(self) -> bool:
        return self.input.muted

    def set_muted(self, muted: bool) -> None:
        self.input.set_muted(muted)

    async def switch_input(self, device: DeviceSpec) -> DeviceInfo:
        return await self.input.switch_device(device)

    async def switch_output(self, device: DeviceSpec) -> DeviceInfo:
        return await self.output.switch_device(device)

    async def aclose(self) -> None:
        await self.input.aclose()
        await self.output.aclose()
