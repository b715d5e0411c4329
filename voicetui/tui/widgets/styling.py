"""Component-class styles as widgets draw them with Rich."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.style import Style
from textual.widget import Widget

if TYPE_CHECKING:
    _Base = Widget
else:
    _Base = object


def component_style(widget: Widget, name: str) -> Style:
    """The Rich style of ``widget``'s component class ``name`` (``"state--dim"``): its text
    style, its own background if it sets one, and its colour as it shows on the widget.

    ``get_component_rich_style(name, partial=True)`` drops what makes a colour relative: Textual's
    ``$text-muted`` is ``auto 60%`` (a contrasting colour at 60%), which comes out plain white —
    brighter than the normal text on a dark theme, invisible on a light one. The full style has
    the colour resolved against the widget's background; its background is left out, so the
    text shows on whatever the widget draws it over (zebra stripes, a cursor row)."""
    full = widget.get_component_rich_style(name)
    partial = widget.get_component_rich_style(name, partial=True)
    if full.color is None or full.color == partial.color:
        return partial
    return partial + Style(color=full.color)


class CachedComponentStyles(_Base):
    """A mixin (before the Textual base class) for widgets that render often: their
    :func:`component_style` results, kept until the styles or the theme change. (Textual's own
    cache is emptied by every ``refresh()``, and resolving a style walks the DOM.)"""

    _vt_styles: dict[str, Style]
    _vt_styles_theme: str

    def component_style(self, name: str) -> Style:
        theme = self.app.theme
        cache = self.__dict__.get("_vt_styles")
        if cache is None or self._vt_styles_theme != theme:
            cache = self._vt_styles = {}
            self._vt_styles_theme = theme
        style = cache.get(name)
        if style is None:
            style = cache[name] = component_style(self, name)
        return style

    def notify_style_update(self) -> None:
        self.__dict__.pop("_vt_styles", None)
        super().notify_style_update()
