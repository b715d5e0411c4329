"""Config files and values that used to fail late or with a traceback: a non-UTF-8 file, a
``--config`` file that does not exist, endpointing delays out of order, ``nan``/``inf``."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicetui.cli import main
from voicetui.config import ConfigError, load_settings


def test_a_non_utf8_file_is_a_readable_error(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b'theme = "caf\xe9"\n')
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        load_settings(env={}, config_path=path)


def test_a_named_config_file_must_exist(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.toml"
    with pytest.raises(ConfigError, match=r"missing\.toml not found"):
        load_settings(env={}, config_path=missing, config_required=True)
    assert load_settings(env={}, config_path=missing).theme == "dark"  # the default one: optional
    assert main(["--config", str(missing), "config"]) == 2
    assert "missing.toml not found" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"turn.min_endpointing_delay": 2.0, "turn.max_endpointing_delay": 1.0}, "is above"),
        ({"turn.min_endpointing_delay": 9.0}, "is above max_endpointing_delay (6 s)"),
        ({"turn.max_endpointing_delay": 0.1}, "min_endpointing_delay (0.5 s) is above"),
        ({"turn.min_endpointing_delay": float("nan")}, "finite"),
        ({"turn.max_endpointing_delay": float("inf")}, "finite"),
        ({"turn.user_away_timeout": float("nan")}, "finite"),
    ],
)
def test_turn_values_are_checked_at_load(flags: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_settings(flags, env={}, config_path=Path("/nonexistent/voicetui.toml"))


def test_nan_from_the_environment(tmp_path: Path) -> None:
    env = {"VOICETUI_TURN_MIN_ENDPOINTING_DELAY": "nan"}
    with pytest.raises(ConfigError, match="finite"):
        load_settings(env=env, config_path=tmp_path / "none.toml")
