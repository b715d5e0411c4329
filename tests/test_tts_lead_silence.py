"""The TTS StreamAdapter starts a reply at its voice (issue 21, item 1): of the silence a TTS
puts before each piece (Hibari ~0.3 s), the first piece keeps only ``lead_silence``; the later
pieces keep theirs (the pause between them). Virtual time."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from livekit import rtc

from voicetui.agents.audio import frames_duration, make_frame
from voicetui.agents.testing import FakeTTS
from voicetui.agents.tts import TEXT_KEY, SynthesizedAudio
from voicetui.agents.tts import StreamAdapter as TTSStreamAdapter
from voicetui.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions


def _group_by_request(audio: list[SynthesizedAudio]) -> list[list[SynthesizedAudio]]:
    groups: list[list[SynthesizedAudio]] = []
    for a in audio:
        if not groups or groups[-1][0].request_id != a.request_id:
            groups.append([])
        groups[-1].append(a)
    return groups


class _PaddedTTS(FakeTTS):
    """FakeTTS with ``pad`` seconds of silence before every piece, as Hibari and Piper put."""

    def __init__(self, pad: float, *, mute: bool = False, **kw: Any) -> None:
        super().__init__(**kw)
        self.pad = pad
        self.mute = mute  # the piece's "voice" is silence too

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> Any:
        stream = super().synthesize(text, conn_options=conn_options)
        emit = stream._emit_frame
        pad, rate, mute = self.pad, self.sample_rate, self.mute
        first = [True]

        def padded(frame: rtc.AudioFrame) -> None:
            if first[0]:
                first[0] = False
                for _ in range(round(pad / 0.05)):
                    emit(make_frame(np.zeros(round(0.05 * rate), np.int16), rate))
            emit(make_frame(np.zeros(frame.samples_per_channel, np.int16), rate) if mute else frame)

        stream._emit_frame = padded  # type: ignore[method-assign]
        return stream


def _leading_silence(frames: list[rtc.AudioFrame]) -> float:
    pcm = np.concatenate([np.frombuffer(f.data, np.int16) for f in frames])
    return float(np.flatnonzero(np.abs(pcm) > 328)[0]) / frames[0].sample_rate


@pytest.mark.looptime
@pytest.mark.parametrize("lead", [0.05, 0.0, None])
async def test_tts_stream_adapter_starts_the_reply_at_its_voice(lead: float | None) -> None:
    fake = _PaddedTTS(0.3, seconds_per_char=0.02)
    async with TTSStreamAdapter(tts=fake, lead_silence=lead).stream() as stream:
        stream.push_text("Hello there, my friend. The weather is lovely today.")
        stream.end_input()
        audio = [a async for a in stream]
    first, second = _group_by_request(audio)
    # the first piece keeps `lead` of its 0.3 s of silence; the second keeps all of it
    kept = 0.3 if lead is None else lead
    assert _leading_silence([a.frame for a in first]) == pytest.approx(kept, abs=1e-3)
    assert _leading_silence([a.frame for a in second]) == pytest.approx(0.3, abs=1e-3)
    # the pieces' texts are still on their first frames
    assert first[0].frame.userdata[TEXT_KEY] == "Hello there, my friend."
    assert second[0].frame.userdata[TEXT_KEY] == "The weather is lovely today."
    assert frames_duration([a.frame for a in first]) == pytest.approx(
        kept + fake.duration_for("Hello there, my friend."), abs=1e-3
    )


@pytest.mark.looptime
async def test_tts_stream_adapter_a_silent_first_piece_keeps_its_text() -> None:
    fake = _PaddedTTS(0.3, mute=True, audio_duration=0.1)
    async with TTSStreamAdapter(tts=fake).stream() as stream:
        stream.push_text("Hmm.")
        stream.end_input()
        audio = [a async for a in stream]
    (only,) = audio
    assert only.frame.userdata[TEXT_KEY] == "Hmm."
    assert frames_duration([only.frame]) == pytest.approx(0.02, abs=1e-3)  # the default lead


def test_tts_stream_adapter_lead_silence_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="lead_silence"):
        TTSStreamAdapter(tts=FakeTTS(), lead_silence=-0.1)
