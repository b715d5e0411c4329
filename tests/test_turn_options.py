"""Turn options are declared once (``TurnOptions``): the session's keyword arguments, an Agent's
overlay, the config file's ``[turn]`` table and the CLI's flags all come from its fields."""

from __future__ import annotations

import inspect
import typing
from pathlib import Path
from typing import Any

import pytest

from voicetui.agents import NOT_GIVEN, Agent, AgentSession
from voicetui.agents.voice import AgentActivity, TurnOptions, TurnOptionsError, TurnOverrides
from voicetui.cli import build_parser, flags_from_args, main
from voicetui.config import load_settings

FIELDS = TurnOptions.model_fields


@pytest.fixture(autouse=True)
def no_user_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VOICETUI_CONFIG", str(tmp_path / "no-config.toml"))
    for name in FIELDS:
        monkeypatch.delenv(f"VOICETUI_TURN_{name.upper()}", raising=False)


# --- one declaration, every surface ---------------------------------------------------------
@pytest.mark.parametrize("cls", [AgentSession, Agent])
def test_the_keyword_arguments_are_the_fields(cls: type) -> None:
    """LiveKit's keyword arguments stay the public signature; none is missing or extra, and
    none carries its own default (the model's apply)."""
    params = inspect.signature(cls.__init__).parameters
    for name in FIELDS:
        assert name in params, f"{cls.__name__} lacks {name}"
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY
        assert params[name].default is NOT_GIVEN
    assert AgentSession().options == TurnOptions()
    assert AgentSession().options.min_endpointing_delay == 0.5  # LiveKit's defaults


def test_every_option_is_a_flag_with_its_docstring_as_help(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "1000")  # (no line breaks inside a help text)
    assert main(["--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    for name, info in FIELDS.items():
        flag = "--" + name.replace("_", "-")
        assert flag in help_text
        doc = " ".join((info.description or "").split())
        assert doc and doc in help_text, f"{flag}: its help is not the field's docstring"
    assert "--no-allow-interruptions" in help_text  # booleans both ways
    assert "--turn-detection {vad,stt,manual}" in help_text  # choices from the Literal


def _flag_value(name: str) -> list[str]:
    kind = FIELDS[name].annotation
    if kind is bool:
        return [f"--no-{name.replace('_', '-')}"]
    flag = f"--{name.replace('_', '-')}"
    literals = [a for a in typing.get_args(kind) if typing.get_origin(a) is typing.Literal]
    if literals:
        return [flag, typing.get_args(literals[0])[-1]]
    return [flag, "2"]


@pytest.mark.parametrize("name", list(FIELDS))
def test_each_flag_sets_its_option(name: str, tmp_path: Path) -> None:
    args = build_parser().parse_args(_flag_value(name))
    flags = flags_from_args(args)
    assert list(flags) == [f"turn.{name}"]
    settings = load_settings(flags, env={}, config_path=tmp_path / "none.toml")
    assert settings.source_of(f"turn.{name}") == "flag"
    assert name in settings.turn.session_kwargs()
    AgentSession(**settings.turn.session_kwargs())  # what the settings pass on, the session takes


def test_the_config_file_embeds_the_model(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[turn]\nmax_tool_steps = 5\nfalse_interruption_timeout = 0\n")
    settings = load_settings(env={}, config_path=path)
    assert isinstance(settings.turn, TurnOptions)
    assert settings.turn.session_kwargs() == {
        "max_tool_steps": 5,
        "false_interruption_timeout": None,
    }
    text = settings.describe()
    assert "turn.max_tool_steps" in text and "5  # config file config.toml" in text
    shown = {line.split("=")[0].strip(): line for line in text.splitlines()[1:]}
    assert shown["turn.min_endpointing_delay"].endswith("(unset)  # default")


# --- the Agent's overlay --------------------------------------------------------------------
def test_an_agent_overrides_only_what_it_sets() -> None:
    session: AgentSession[None] = AgentSession(
        allow_interruptions=False, min_endpointing_delay=0.3, max_endpointing_delay=4.0
    )
    agent = Agent(instructions="", min_endpointing_delay=1.0, user_away_timeout=None)
    assert agent.options.given() == {"min_endpointing_delay": 1.0, "user_away_timeout": None}
    effective = AgentActivity(agent, session).options
    assert effective.min_endpointing_delay == 1.0  # the agent's
    assert effective.user_away_timeout is None  # the agent's: None is a value, not "unset"
    assert effective.allow_interruptions is False  # the session's
    assert effective.max_endpointing_delay == 4.0  # the session's
    assert effective.max_tool_steps == 3  # the default
    plain = AgentActivity(Agent(instructions=""), session).options
    assert plain == session.options


def test_overrides_and_options_compose() -> None:
    base = TurnOptions(max_tool_steps=1)
    overlay = TurnOverrides(turn_detection="manual")
    assert base.with_overrides(overlay).given() == {"max_tool_steps": 1, "turn_detection": "manual"}
    session: AgentSession[None] = AgentSession(options=base, max_tool_steps=2)
    assert session.options.max_tool_steps == 2  # keyword arguments win over options=
    agent = Agent(instructions="", options=overlay, allow_interruptions=False)
    assert agent.options.given() == {"turn_detection": "manual", "allow_interruptions": False}


# --- one readable error ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: AgentSession(max_tool_steps=-1),
            "max_tool_steps: Input should be greater than or equal to 0 (got -1)",
        ),
        (
            lambda: AgentSession(min_endpointing_delay=2.0, max_endpointing_delay=1.0),
            "options: min_endpointing_delay (2 s) is above max_endpointing_delay (1 s)",
        ),
        (
            lambda: Agent(instructions="", turn_detection="push"),  # type: ignore[arg-type]
            "turn_detection: Input should be 'vad', 'stt' or 'manual' (got 'push')",
        ),
        (
            lambda: AgentSession(user_away_timeout=float("nan")),
            "user_away_timeout: Input should be a finite number (got nan)",
        ),
    ],
)
def test_a_bad_value_is_one_readable_error(make: Any, message: str) -> None:
    with pytest.raises(TurnOptionsError) as e:
        make()
    assert str(e.value) == message
    assert isinstance(e.value, ValueError)  # as before: a ValueError


def test_a_bad_flag_value_is_one_readable_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--max-tool-steps", "-1", "config"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "voicetui: invalid settings:",
        "  turn.max_tool_steps: Input should be greater than or equal to 0 (from flag)",
    ]
