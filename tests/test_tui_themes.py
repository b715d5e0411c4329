"""Themes: the shipped dark and light themes, users' themes, broken files."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import fake_runtime as fr
from tests.fake_runtime import FakeRuntime, settle
from voicetui.tui.app import VoiceTUIApp
from voicetui.tui.themes import discover_themes, load_theme_file, theme_dirs

SHIPPED = Path(__file__).resolve().parents[1] / "themes"


def test_shipped_themes_load() -> None:
    themes = discover_themes([SHIPPED])
    assert {"dark", "light"} <= set(themes)
    assert themes["dark"].theme.dark and not themes["light"].theme.dark
    assert "SessionHeader" in themes["dark"].css
    assert themes["light"].theme.variables["vt-user"]
    assert SHIPPED in theme_dirs()


def test_user_theme_wins_and_can_start_from_a_builtin(tmp_path: Path) -> None:
    (tmp_path / "dark.toml").write_text('base = "nord"\n[variables]\nvt-user = "#ff0000"\n')
    (tmp_path / "solar.toml").write_text('primary = "#b58900"\nbackground = "#002b36"\n')
    (tmp_path / "solar.tcss").write_text("ConversationView { padding: 0; }\n")
    (tmp_path / "broken.toml").write_text("primary = \n")
    (tmp_path / "nocolor.toml").write_text("dark = true\n")
    (tmp_path / "typo.toml").write_text('primary = "#fff"\nprimray = "#000"\n')
    themes = discover_themes([tmp_path, SHIPPED])
    assert themes["dark"].source.parent == tmp_path
    assert themes["dark"].theme.variables["vt-user"] == "#ff0000"
    assert themes["solar"].css.startswith("ConversationView")
    assert "broken" not in themes and "nocolor" not in themes and "typo" not in themes
    assert "light" in themes
    with pytest.raises(ValueError, match="unknown theme fields: primray"):
        load_theme_file(tmp_path / "typo.toml")


async def test_app_uses_the_theme_by_name_and_warns_on_unknown() -> None:
    app = VoiceTUIApp(FakeRuntime(), theme="light", bridge_interval=0)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert app.theme == "light"
        assert app.get_css_variables()["vt-agent"] == "#0B5CAD"
    app = VoiceTUIApp(FakeRuntime(), theme="no-such-theme", bridge_interval=0)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert app.theme == "dark"
        assert any("no-such-theme" in str(n.message) for n in fr.notifications(app))
    # Textual's own themes work too (with voicetui's variables defaulted)
    app = VoiceTUIApp(FakeRuntime(), theme="textual-light", bridge_interval=0)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert app.theme == "textual-light"
        assert "vt-user" in app.get_css_variables()


async def test_default_theme_missing_falls_back_quietly(monkeypatch: pytest.MonkeyPatch) -> None:
    """An install without the theme files still starts, on Textual's dark theme."""
    import voicetui.tui.app as app_module

    monkeypatch.setattr(app_module, "discover_themes", lambda: {})
    app = VoiceTUIApp(FakeRuntime(), bridge_interval=0)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert app.theme == "textual-dark"
        assert not fr.notifications(app)


def test_the_wheel_ships_every_theme_file() -> None:
    """pyproject's data-files put every file of themes/ in <prefix>/share/voicetui/themes, one of
    the directories themes are looked up in."""
    import sys
    import tomllib

    root = SHIPPED.parent
    config = tomllib.loads((root / "pyproject.toml").read_text())
    data_files = config["tool"]["setuptools"]["data-files"]
    shipped = {p for pattern in data_files["share/voicetui/themes"] for p in root.glob(pattern)}
    assert shipped == {p for p in SHIPPED.iterdir() if p.suffix in (".toml", ".tcss")}
    assert Path(sys.prefix) / "share" / "voicetui" / "themes" in theme_dirs()
