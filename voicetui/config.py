"""voicetui's settings: a TOML file in the platform config dir, then environment variables, then
command-line flags, in that order of precedence (flags win). Every value remembers where it came
from, for ``voicetui config``.

The file (``platformdirs.user_config_dir("voicetui")/config.toml``, or ``$VOICETUI_CONFIG``)::

    mode = "local"                 # local | room | text | wav
    agent = "~/agents/support.py:Support"
    input_device = "usb"           # index or name substring
    theme = "dark"
    log_level = "info"

    [models]                       # voicetui.plugins.selection.ModelSelection
    llm = "openai"
    llm_model = "gpt-4o-mini"

    [room]
    url = "wss://example.livekit.cloud"
    name = "voicetui"

    [turn]                         # agents.voice.TurnOptions: AgentSession's turn-taking
    min_endpointing_delay = 0.4    # options (the CLI's turn flags come from it too)
    user_away_timeout = 0          # 0 disables it

Environment: ``VOICETUI_<KEY>`` for top-level keys (``VOICETUI_MODE``),
``VOICETUI_<SECTION>_<KEY>`` for the others (``VOICETUI_TURN_MIN_ENDPOINTING_DELAY``), the model
keys also without their section (``VOICETUI_LLM``, ``VOICETUI_LLM_MODEL``), plus the usual
``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``LIVEKIT_URL``, ``LIVEKIT_API_KEY`` and
``LIVEKIT_API_SECRET`` (the ``VOICETUI_`` names win over those).

The layering is done here rather than with pydantic-settings: its sources do not tell which one
a value came from, and ``voicetui config`` shows that for every key.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeAlias

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
)

from .agents.voice.turn_options import TurnOptions
from .events import Mode as Mode  # (defined once, with the events that carry it)
from .plugins.selection import ModelSelection

LogLevel: TypeAlias = Literal["debug", "info", "warning", "error", "critical"]

SECRET_KEYS = frozenset({"models.openai_api_key", "room.token", "room.api_key", "room.api_secret"})
SECTIONS = ("models", "room", "turn")

# well-known variables of other tools; VOICETUI_* names (generated below) take precedence
_FOREIGN_ENV: dict[str, str] = {
    "OPENAI_API_KEY": "models.openai_api_key",
    "OPENAI_BASE_URL": "models.openai_base_url",
    "LIVEKIT_URL": "room.url",
    "LIVEKIT_API_KEY": "room.api_key",
    "LIVEKIT_API_SECRET": "room.api_secret",
}


class ConfigError(Exception):
    """The settings are invalid; the message says which value, from where, and why."""


class RoomSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = None
    name: str = "voicetui"
    identity: str = "voicetui-agent"
    token: str | None = None
    api_key: str | None = None
    api_secret: str | None = None


class TurnSettings(TurnOptions):
    """The ``[turn]`` table: ``AgentSession``'s turn-taking options, those set only (the others
    keep the models' and the session's defaults). Numbers are finite and the endpointing delays
    in order (with the defaults of those unset). A timeout of 0 or less disables it: a TOML file
    has no None."""

    def session_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``AgentSession`` (only the options that were set)."""
        out = self.given()
        for name in DISABLED_BY_ZERO:
            if name in out and out[name] is not None and out[name] <= 0:
                out[name] = None
        return out


DISABLED_BY_ZERO = frozenset(
    name for name, info in TurnOptions.model_fields.items() if info.annotation == float | None
)
"""The turn options that None disables: in settings (a file, a flag) 0 or less does."""


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Mode = "local"
    agent: str | None = None
    """``path.py[:Name]``; None: the default agent."""
    input_device: str | int | None = None
    """Index or name substring (None: the system default)."""
    output_device: str | int | None = None
    input_wav: str | None = None
    output_wav: str | None = None
    record_dir: str | None = None
    theme: str = "dark"
    log_level: LogLevel = "info"
    echo_cancellation: bool = True
    models: ModelSelection = Field(default_factory=ModelSelection)
    room: RoomSettings = Field(default_factory=RoomSettings)
    turn: TurnSettings = Field(default_factory=TurnSettings)

    _sources: dict[str, str] = PrivateAttr(default_factory=dict)
    _config_path: Path | None = PrivateAttr(default=None)

    @property
    def config_path(self) -> Path | None:
        """The config file that was read (None: there was none)."""
        return self._config_path

    def source_of(self, key: str) -> str:
        """Where the dotted ``key`` (``"models.llm"``) came from: ``"default"``,
        ``"config file"``, ``"env NAME"`` or ``"flag"``."""
        return self._sources.get(key, "default")

    def flat(self) -> dict[str, Any]:
        """Every setting by dotted key, in declaration order."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, TurnSettings):  # an overlay: what it leaves unset is unset
                given = value.given()
                for sub in type(value).model_fields:
                    out[f"{name}.{sub}"] = given.get(sub)
            elif isinstance(value, BaseModel):
                for sub in type(value).model_fields:
                    out[f"{name}.{sub}"] = getattr(value, sub)
            else:
                out[name] = value
        return out

    def describe(self) -> str:
        """The effective settings, one per line with their source; secrets masked."""
        where = self._config_path
        lines = [f"# config file: {where if where is not None else default_config_path()}"]
        if where is None:
            lines[0] += " (not found)"
        values = self.flat()
        width = max(len(k) for k in values)
        for key, value in values.items():
            shown = mask(value) if key in SECRET_KEYS else _show(value)
            lines.append(f"{key.ljust(width)} = {shown}  # {self.source_of(key)}")
        return "\n".join(lines)


def _show(value: Any) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def mask(value: Any) -> str:
    """A secret as shown to users: its first characters (at most 4, never more than a quarter of
    it), then stars."""
    if value is None or value == "":
        return "(unset)"
    text = str(value)
    keep = min(4, len(text) // 4)
    return f'"{text[:keep]}****"'


def default_config_path() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir("voicetui")) / "config.toml"


def _field_names(section: str | None) -> list[str]:
    model: type[BaseModel] = Settings
    if section is not None:
        ann = Settings.model_fields[section].annotation
        assert isinstance(ann, type) and issubclass(ann, BaseModel)
        model = ann
    return list(model.model_fields)


def env_names() -> dict[str, str]:
    """Every environment variable read, with the dotted key it sets (the foreign names first, so
    the ``VOICETUI_`` ones override them)."""
    names = dict(_FOREIGN_ENV)
    for name in _field_names(None):
        if name not in SECTIONS:
            names[f"VOICETUI_{name.upper()}"] = name
    for section in SECTIONS:
        for name in _field_names(section):
            names[f"VOICETUI_{section.upper()}_{name.upper()}"] = f"{section}.{name}"
    for name in _field_names("models"):  # VOICETUI_LLM, VOICETUI_TTS_VOICE, ...
        names[f"VOICETUI_{name.upper()}"] = f"models.{name}"
    return names


def _set(tree: dict[str, Any], key: str, value: Any) -> None:
    if "." in key:
        section, name = key.split(".", 1)
        tree.setdefault(section, {})[name] = value
    else:
        tree[key] = value


def _flatten(data: Mapping[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in SECTIONS:
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}: [{key}] must be a table")
            for sub, v in value.items():
                out[f"{key}.{sub}"] = v
        else:
            out[key] = value
    return out


def read_config_file(path: Path, *, required: bool = False) -> dict[str, Any]:
    """The file's settings by dotted key (``{}`` if there is no such file, unless
    ``required``: a file the user named)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            raise ConfigError(f"config file {path} not found") from None
        return {}
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"{path} is not UTF-8 text (byte {e.start}: {e.reason}); a config file is TOML"
        ) from None
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror or e}") from e
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from e
    return _flatten(data, str(path))


def _env_value(raw: str) -> Any:
    return None if raw.strip().lower() in ("none", "null") else raw


def load_settings(
    flags: Mapping[str, Any] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    config_path: str | Path | None = None,
    config_required: bool = False,
) -> Settings:
    """Settings from the config file, then ``env`` (default ``os.environ``), then ``flags``
    (dotted keys: ``{"models.llm": "openai", "mode": "text"}``; None values are ignored).
    ``config_path``: another file (default ``$VOICETUI_CONFIG`` or the platform's), read if
    it exists; ``config_required``: it must (a file the user named with ``--config``). Raises
    :class:`ConfigError`."""
    env = os.environ if env is None else env
    if config_path is None:
        config_path = env.get("VOICETUI_CONFIG") or default_config_path()
    path = Path(config_path).expanduser()
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    file_values = read_config_file(path, required=config_required)
    for key, value in file_values.items():
        merged[key] = value
        sources[key] = f"config file {path.name}"
    for name, key in env_names().items():
        raw = env.get(name)
        if raw is None or raw == "":
            continue
        merged[key] = _env_value(raw)
        sources[key] = f"env {name}"
    for key, value in (flags or {}).items():
        if value is None:
            continue
        merged[key] = value
        sources[key] = "flag"
    tree: dict[str, Any] = {}
    for key, value in merged.items():
        _set(tree, key, value)
    try:
        settings = Settings.model_validate(tree)
    except ValidationError as e:
        raise ConfigError(_explain(e, sources)) from None
    settings._sources = sources
    settings._config_path = path if file_values or path.exists() else None
    return settings


def _explain(error: ValidationError, sources: Mapping[str, str]) -> str:
    lines = []
    for err in error.errors():
        key = ".".join(str(p) for p in err["loc"] if not isinstance(p, int))
        where = sources.get(key, "")
        if err["type"] == "extra_forbidden":
            msg = "unknown setting"
        else:
            msg = err["msg"].removeprefix("Value error, ")  # (a validator's own message)
        lines.append(f"{key}: {msg}" + (f" (from {where})" if where else ""))
    return "invalid settings:\n  " + "\n  ".join(lines)
