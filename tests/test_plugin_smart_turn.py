"""Smart Turn v3 on real speech (espeak-ng): a finished request sounds finished, a phrase broken
off does not; the model comes from the installed pipecat-ai wheel, and without it the error
says what to install."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from tests.audio_fixtures import espeak_pcm, have_espeak
from voicetui.plugins import smart_turn
from voicetui.plugins.smart_turn import SmartTurn, SmartTurnUnavailable

RATE = 16000


def _installed() -> bool:
    try:
        smart_turn.bundled_model_path()
    except SmartTurnUnavailable:
        return False
    return importlib.util.find_spec("faster_whisper") is not None


needs_model = pytest.mark.skipif(
    not (_installed() and have_espeak()), reason="pipecat-ai (the model) or espeak-ng missing"
)


def turn(text: str, rate: int = RATE) -> np.ndarray:
    """Half a second before the voice, the voice, the VAD's 0.4 s of silence after it."""
    voice = espeak_pcm(text, sample_rate=rate)
    return np.concatenate(
        [np.zeros(rate // 2, np.int16), voice, np.zeros(round(0.4 * rate), np.int16)]
    )


@pytest.fixture(scope="module")
def model() -> SmartTurn:
    m = SmartTurn()
    m.prewarm()
    return m


@pytest.mark.slow
@needs_model
@pytest.mark.parametrize("text", ["What time is it?", "Set a timer for five minutes."])
def test_a_finished_request_sounds_finished(model: SmartTurn, text: str) -> None:
    assert model.predict(turn(text), RATE) >= 0.8


@pytest.mark.slow
@needs_model
@pytest.mark.parametrize("text", ["So um I was thinking that maybe", "And then we went to the"])
def test_a_broken_off_phrase_does_not(model: SmartTurn, text: str) -> None:
    assert model.predict(turn(text), RATE) <= 0.4


@pytest.mark.slow
@needs_model
async def test_other_rates_and_long_turns_are_handled(model: SmartTurn) -> None:
    # 48 kHz audio is resampled; a turn longer than 8 s is heard by its end
    finished = turn("What time is it?", 48000)
    long_turn = np.concatenate([np.tile(turn("So um I was thinking", 48000), 6), finished])
    assert len(long_turn) > 8 * 48000
    assert await model.predict_end_of_turn(long_turn, 48000) >= 0.8
    assert model.model.startswith("smart-turn-v3")


def test_without_pipecat_ai_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(smart_turn.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(SmartTurnUnavailable, match=r"pip install 'voicetui\[smart-turn\]'"):
        SmartTurn().prewarm()


def test_threshold_is_checked() -> None:
    with pytest.raises(ValueError, match="threshold"):
        SmartTurn(threshold=1.5)
