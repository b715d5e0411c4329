"""Settings: config file < environment < flags, sources, validation messages, masking."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicetui.config import ConfigError, Settings, env_names, load_settings, mask


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


CONFIG = """
mode = "room"
theme = "light"
input_device = "usb"

[models]
llm = "openai"
llm_model = "gpt-4o"
openai_api_key = "sk-from-the-file-0123456789"

[room]
url = "wss://file.example"
name = "from-file"

[turn]
min_endpointing_delay = 0.8
user_away_timeout = 0
"""


def test_defaults_without_file_or_env(tmp_path: Path) -> None:
    s = load_settings(env={}, config_path=tmp_path / "missing.toml")
    assert s == Settings()
    assert s.config_path is None
    assert s.source_of("mode") == "default"
    assert s.turn.session_kwargs() == {}


def test_precedence_file_then_env_then_flags(tmp_path: Path) -> None:
    path = write(tmp_path, CONFIG)
    env = {
        "VOICETUI_THEME": "solarized",
        "VOICETUI_LLM_MODEL": "gpt-4o-mini",
        "VOICETUI_TURN_MIN_ENDPOINTING_DELAY": "0.6",
        "LIVEKIT_URL": "wss://env.example",
        "LIVEKIT_API_KEY": "key-from-env",
        "OPENAI_API_KEY": "sk-from-the-env",
        "UNRELATED": "x",
    }
    flags = {"mode": "text", "turn.min_endpointing_delay": 0.3, "models.stt": None}
    s = load_settings(flags, env=env, config_path=path)
    assert s.config_path == path
    assert s.mode == "text" and s.source_of("mode") == "flag"
    assert s.theme == "solarized" and s.source_of("theme") == "env VOICETUI_THEME"
    assert s.input_device == "usb" and s.source_of("input_device") == "config file config.toml"
    assert s.models.llm == "openai" and s.models.llm_model == "gpt-4o-mini"
    assert s.models.openai_api_key == "sk-from-the-env"
    assert s.source_of("models.openai_api_key") == "env OPENAI_API_KEY"
    assert s.models.stt == "auto"  # a None flag is no flag
    assert s.room.url == "wss://env.example" and s.room.name == "from-file"
    assert s.room.api_key == "key-from-env"
    assert s.turn.min_endpointing_delay == 0.3
    assert s.turn.session_kwargs() == {"min_endpointing_delay": 0.3, "user_away_timeout": None}


def test_voicetui_env_names_win_over_foreign_ones(tmp_path: Path) -> None:
    env = {"OPENAI_BASE_URL": "http://a", "VOICETUI_OPENAI_BASE_URL": "http://b"}
    s = load_settings(env=env, config_path=tmp_path / "none.toml")
    assert s.models.openai_base_url == "http://b"
    assert s.source_of("models.openai_base_url") == "env VOICETUI_OPENAI_BASE_URL"
    names = env_names()
    assert names["VOICETUI_MODE"] == "mode" and names["VOICETUI_ROOM_TOKEN"] == "room.token"
    assert names["VOICETUI_STT"] == "models.stt"


def test_config_file_from_env_variable(tmp_path: Path) -> None:
    path = write(tmp_path, 'mode = "wav"\ninput_wav = "q.wav"\n')
    s = load_settings(env={"VOICETUI_CONFIG": str(path)})
    assert s.mode == "wav" and s.input_wav == "q.wav" and s.config_path == path


def test_invalid_values_say_what_and_where(tmp_path: Path) -> None:
    path = write(tmp_path, 'mode = "moon"\n[models]\nllm = "gpt"\n')
    with pytest.raises(ConfigError) as e:
        load_settings(env={}, config_path=path)
    message = str(e.value)
    assert "mode:" in message and "(from config file config.toml)" in message
    assert "models.llm:" in message
    with pytest.raises(ConfigError, match=r"turn.min_endpointing_delay: .*env VOICETUI_TURN"):
        load_settings(
            env={"VOICETUI_TURN_MIN_ENDPOINTING_DELAY": "soon"}, config_path=tmp_path / "x.toml"
        )
    with pytest.raises(ConfigError, match="colour: unknown setting"):
        load_settings(env={}, config_path=write(tmp_path, 'colour = "red"\n'))
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_settings(env={}, config_path=write(tmp_path, "mode = \n"))
    with pytest.raises(ConfigError, match=r"\[room\] must be a table"):
        load_settings(env={}, config_path=write(tmp_path, 'room = "x"\n'))


def test_env_none_clears_an_optional_value(tmp_path: Path) -> None:
    path = write(tmp_path, 'agent = "a.py"\n')
    s = load_settings(env={"VOICETUI_AGENT": "none"}, config_path=path)
    assert s.agent is None and s.source_of("agent") == "env VOICETUI_AGENT"


def test_describe_masks_secrets_and_tells_sources(tmp_path: Path) -> None:
    path = write(tmp_path, CONFIG)
    env = {"LIVEKIT_API_SECRET": "super-secret-value-42", "VOICETUI_ROOM_TOKEN": "tok"}
    s = load_settings({"theme": "light"}, env=env, config_path=path)
    text = s.describe()
    assert "sk-from-the-file" not in text and "super-secret" not in text
    assert "tok" not in text.replace("token", "")
    assert '"sk-f****"  # config file config.toml' in text
    assert "room.api_secret" in text and '"supe****"  # env LIVEKIT_API_SECRET' in text
    assert "theme" in text and '"light"  # flag' in text
    assert f"# config file: {path}" in text.splitlines()[0]
    assert "mode" in text and '"room"  # config file config.toml' in text


def test_mask() -> None:
    assert mask(None) == "(unset)"
    assert mask("abc") == '"****"'
    assert mask("sk-1234567890abcdef") == '"sk-1****"'
