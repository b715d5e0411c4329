"""Themes: Textual themes (``NAME.toml``) with optional extra styles (``NAME.tcss``).

Looked up, first match wins, in the user's config dir (``<config>/themes``) then the ``themes/``
directory shipped next to the package. A ``NAME.toml`` holds the fields of
:class:`textual.theme.Theme` (``primary``, ``background``, ``dark``...) and a ``[variables]``
table; ``base = "textual-dark"`` starts from one of Textual's built-in themes. A ``NAME.tcss``
next to it is added to the app's stylesheet while that theme is active.
"""

from __future__ import annotations

import logging
import site
import sys
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from platformdirs import user_config_dir
from textual.theme import BUILTIN_THEMES, Theme

logger = logging.getLogger("voicetui.tui")

DEFAULT_THEME = "dark"
FALLBACK_THEME = "textual-dark"
"""Used when the default theme's files are not installed."""

# voicetui's own CSS variables, with defaults for themes that do not set them (Textual's).
VARIABLE_DEFAULTS: dict[str, str] = {
    "vt-user": "#FFB454",
    "vt-agent": "#4FB3FF",
    "vt-tool": "#C792EA",
    "vt-eou": "#FFB454",
    "vt-stt": "#E6B450",
    "vt-llm": "#4FB3FF",
    "vt-tts": "#7FD962",
    "vt-other": "#5C6773",
}

_THEME_FIELDS = {f.name for f in fields(Theme)} - {"name", "variables"}


@dataclass(frozen=True)
class LoadedTheme:
    theme: Theme
    css: str
    """Extra styles (the ``.tcss``), empty if none."""
    source: Path


def theme_dirs() -> list[Path]:
    """Where themes are looked up, in order of precedence: the user's config dir, the
    repository's ``themes/`` (a source checkout or editable install), then
    ``<prefix>/share/voicetui/themes`` (an installed wheel ships them there as data files; the
    prefix is the environment's, or the user base for ``pip install --user``)."""
    return [
        Path(user_config_dir("voicetui")) / "themes",
        Path(__file__).resolve().parents[2] / "themes",
        Path(sys.prefix) / "share" / "voicetui" / "themes",
        Path(site.getuserbase()) / "share" / "voicetui" / "themes",
    ]


def load_theme_file(path: Path) -> LoadedTheme:
    """Read one ``NAME.toml`` (and its ``NAME.tcss``, if any). Raises ``ValueError``."""
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ValueError(f"{path}: {e}") from e
    name = str(data.pop("name", path.stem))
    base_name = data.pop("base", None)
    variables = data.pop("variables", {})
    if not isinstance(variables, dict):
        raise ValueError(f"{path}: [variables] must be a table")
    unknown = set(data) - _THEME_FIELDS
    if unknown:
        raise ValueError(f"{path}: unknown theme fields: {', '.join(sorted(unknown))}")
    kwargs: dict[str, Any] = {}
    if base_name is not None:
        base = BUILTIN_THEMES.get(str(base_name))
        if base is None:
            raise ValueError(f"{path}: unknown base theme {base_name!r}")
        kwargs = {f: getattr(base, f) for f in _THEME_FIELDS}
        variables = {**base.variables, **variables}
    kwargs.update(data)
    if "primary" not in kwargs:
        raise ValueError(f"{path}: a theme needs a primary color (or a base theme)")
    try:
        theme = Theme(name=name, variables={str(k): str(v) for k, v in variables.items()}, **kwargs)
    except TypeError as e:
        raise ValueError(f"{path}: {e}") from e
    css_path = path.with_suffix(".tcss")
    css = css_path.read_text(encoding="utf-8") if css_path.is_file() else ""
    return LoadedTheme(theme=theme, css=css, source=path)


def discover_themes(dirs: list[Path] | None = None) -> dict[str, LoadedTheme]:
    """Every readable theme in ``dirs`` (default :func:`theme_dirs`), earlier dirs winning.
    Broken files are logged and skipped."""
    found: dict[str, LoadedTheme] = {}
    for directory in dirs if dirs is not None else theme_dirs():
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.toml")):
            try:
                loaded = load_theme_file(path)
            except ValueError as e:
                logger.warning("skipping theme: %s", e)
                continue
            found.setdefault(loaded.theme.name, loaded)
    return found
