"""The speaker's standby (issue 21): after a while with nothing to play its PortAudio stream is
stopped, not closed, and the next audio restarts it — on real PortAudio streams over virtual
PulseAudio devices."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from tests.test_io_local import Finished, feed, tone
from tests.virtual_audio import RATE, VirtualAudio, until, virtual_audio_fixture  # noqa: F401
from voicetui.io.local import AudioErrorEvent, EchoCanceller, LocalAudioOutput, StreamOpenedEvent

PIPE_RATE = 24000


class ReverseSpy(EchoCanceller):
    """Records what the speaker reported as played (the canceller's far-end input)."""

    def __init__(self) -> None:
        super().__init__(warmup=0)
        self.blocks: list[np.ndarray] = []

    def process_reverse(
        self, samples: np.ndarray, sample_rate: int, at: float | None = None
    ) -> None:
        self.blocks.append(samples.copy())
        super().process_reverse(samples, sample_rate, at)


@pytest.fixture
async def standby_output(virtual_audio: VirtualAudio) -> LocalAudioOutput:
    # a stall timeout well under the time spent in standby below: a stopped stream that the
    # watchdog took for a stalled one would be reported and reopened
    echo = ReverseSpy()
    out = LocalAudioOutput(
        sample_rate=PIPE_RATE, standby_after=0.3, stall_timeout=0.6, echo_canceller=echo
    )
    out.start()
    async with asyncio.timeout(10):
        await out.wait_open()
    yield out  # type: ignore[misc]
    await out.aclose()


async def test_standby_is_not_a_stall_and_the_next_speech_plays_completely(
    virtual_audio: VirtualAudio, standby_output: LocalAudioOutput
) -> None:
    out = standby_output
    echo = out._echo
    assert isinstance(echo, ReverseSpy)
    errors: list[AudioErrorEvent] = []
    opened: list[StreamOpenedEvent] = []
    out.events.on("error", errors.append)
    out.events.on("stream_opened", opened.append)
    fin = Finished(out)
    async with asyncio.timeout(10):
        await until(lambda: out.in_standby)
    assert out.standbys == 1
    await asyncio.sleep(1.5)  # no callback for more than twice the stall timeout
    assert out.in_standby and not errors and not opened, (errors, opened)

    loop = asyncio.get_running_loop()
    echo.blocks.clear()
    async with virtual_audio.record_speaker() as rec:
        asked_at = loop.time()
        await feed(out, tone(0.5))
        async with asyncio.timeout(5):
            ev = await out.wait_for_playout()
        await asyncio.sleep(0.2)
    assert not ev.interrupted and ev.playback_position == pytest.approx(0.5, abs=1e-9)
    # all of it reached the device: nothing cut at the start while the stream restarted
    assert 0.48 <= rec.loud_duration() <= 0.53, rec.loud_duration()
    assert 0.48 <= rec.loud_span() <= 0.53, rec.loud_span()
    # dated by its hand-off to the restarted device, not before it was asked for
    assert fin.started == 1 and fin.started_at >= asked_at
    assert not errors and not opened

    # the echo canceller's far end: the restart's first report is the tone itself (no silence
    # held from before the standby ahead of it), then all of it, at the stream's latency
    played = np.concatenate(echo.blocks)
    assert np.abs(echo.blocks[0].astype(np.int32)).max() > 1000
    loud = np.flatnonzero(np.abs(played.astype(np.int32)) > 500)
    assert 0.49 * RATE <= loud[-1] - loud[0] <= 0.51 * RATE
    assert out.latency is not None
    assert echo.stream_delay_ms == round(out.latency * 1000)

    # nothing to play again: back in standby, still without a fault
    async with asyncio.timeout(10):
        await until(lambda: out.standbys == 2)
    assert out.in_standby and not errors and not opened


async def test_speech_arriving_while_the_stream_stops_still_plays(
    virtual_audio: VirtualAudio, standby_output: LocalAudioOutput
) -> None:
    """Audio that comes while the stop is under way is played once it is done (the stop and
    the restart are done in order by the supervisor)."""
    out = standby_output
    fin = Finished(out)
    async with asyncio.timeout(10):
        await until(lambda: out._supervisor._standby_wanted)
    async with virtual_audio.record_speaker() as rec:
        await feed(out, tone(0.4))
        async with asyncio.timeout(5):
            ev = await out.wait_for_playout()
        await asyncio.sleep(0.2)
    assert not ev.interrupted and ev.playback_position == pytest.approx(0.4, abs=1e-9)
    assert 0.38 <= rec.loud_duration() <= 0.43, rec.loud_duration()
    assert fin.started == 1


async def test_device_switch_in_standby_opens_the_new_device_in_standby(
    virtual_audio: VirtualAudio, standby_output: LocalAudioOutput
) -> None:
    out = standby_output
    async with asyncio.timeout(10):
        await until(lambda: out.in_standby)
    opened: list[StreamOpenedEvent] = []
    out.events.on("stream_opened", opened.append)
    await out.switch_device("pulse")
    async with asyncio.timeout(10):
        await until(lambda: bool(opened) and out.in_standby)
    assert opened[0].device == "pulse"
    await feed(out, tone(0.3))
    async with asyncio.timeout(5):
        ev = await out.wait_for_playout()
    assert not ev.interrupted and ev.playback_position == pytest.approx(0.3, abs=1e-9)


async def test_no_standby_when_disabled(virtual_audio: VirtualAudio) -> None:
    out = LocalAudioOutput(sample_rate=PIPE_RATE, standby_after=None)
    try:
        out.start()
        async with asyncio.timeout(10):
            await out.wait_open()
        await asyncio.sleep(1.0)
        assert not out.in_standby and out.standbys == 0
    finally:
        await out.aclose()
