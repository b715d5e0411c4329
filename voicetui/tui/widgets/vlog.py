"""A virtualized log: thousands of entries, only the visible lines drawn.

Entries are rendered once per width and kept as strips — the last :data:`KEEP_RENDERED` drawn;
the others keep only their height and are rendered again if they show (thousands of kept strips
cost memory and, worse, garbage-collector pauses of hundreds of ms). Entries can be updated or removed by key
(interim transcripts, running tool calls): that entry alone is rendered again and the line
offsets after it shift. When the width changes, entries are not all rendered again at once:
each gets an estimated height (:meth:`VirtualLog.estimate_height`, cheap) and is rendered for
real when it becomes visible, correcting the offsets after it.

Subclasses render their payloads with :meth:`VirtualLog.render_payload`;
:func:`gutter_strips` helps with a label column and a hanging indent.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterable
from typing import Generic, TypeVar

from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.events import Resize
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

P = TypeVar("P")

RENDER_ON_RESIZE = 64
"""Entries at the end rendered at once on a resize (the rest when they show)."""
KEEP_RENDERED = 256
"""Entries whose rendering is kept (the most recently drawn)."""


class _Entry(Generic[P]):
    __slots__ = ("height", "key", "payload", "strips")

    def __init__(self, key: str | None, payload: P) -> None:
        self.key = key
        self.payload = payload
        self.strips: list[Strip] | None = None
        self.height = 0
        """The height used for the offsets: exact once rendered, else an estimate."""


def text_segments(console: Console, text: Text) -> list[Segment]:
    """``text`` as segments, its base style included (``Text.render`` leaves the base style to
    the caller: without this, a ``Text("You", style=...)`` comes out unstyled)."""
    segments = list(text.render(console, end=""))
    base = console.get_style(text.style) if isinstance(text.style, str) else text.style
    if base:
        segments = list(Segment.apply_style(segments, base))
    return segments


def text_to_strips(console: Console, lines: Iterable[Text]) -> list[Strip]:
    return [Strip(text_segments(console, line), line.cell_len) for line in lines]


def panel_strips(console: Console, text: Text, width: int, style: Style) -> list[Strip]:
    """A multi-line ``text`` (no wrapping) as a widget's lines: ``width`` cells each, on the
    widget's ``style``. For panels that redraw on every batch: cheaper than letting Textual
    render the Text (see ``RecentTurns``, ``StatePanel``)."""
    return [
        Strip(text_segments(console, line), line.cell_len)
        .adjust_cell_length(width, style)
        .apply_style(style)
        for line in text.split("\n")
    ]


def gutter_strips(
    console: Console, label: Text, body: Text, width: int, gutter: int
) -> list[Strip]:
    """``body`` wrapped to ``width - gutter`` with ``label`` (padded to ``gutter``) on the first
    line and blanks on the others."""
    inner = max(8, width - gutter)
    plain = body.plain
    lines: Iterable[Text]
    if not plain:
        lines = [Text("")]
    elif "\n" not in plain and body.cell_len <= inner:
        lines = [body]
    else:
        lines = body.wrap(console, inner, overflow="fold")
    head = label.copy()
    head.truncate(gutter, pad=True)
    head_segments = text_segments(console, head)
    pad_segments = [Segment(" " * gutter)]
    out: list[Strip] = []
    for i, line in enumerate(lines):
        segments = head_segments if i == 0 else pad_segments
        out.append(Strip([*segments, *text_segments(console, line)], gutter + line.cell_len))
    return out


def estimate_lines(text: str, width: int) -> int:
    """How many lines ``text`` takes wrapped at ``width`` (a guess: words are not measured)."""
    width = max(1, width)
    return sum(max(1, -(-len(part) // width)) for part in text.split("\n"))


class VirtualLog(ScrollView, Generic[P], can_focus=True):
    DEFAULT_CSS = """
    VirtualLog {
        background: $surface;
        overflow-y: scroll;
        overflow-x: hidden;
        scrollbar-size-vertical: 1;
    }
    """

    def __init__(
        self,
        *,
        max_entries: int | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._entries: list[_Entry[P]] = []
        self._by_key: dict[str, _Entry[P]] = {}
        self._starts: list[int] = []
        self._total = 0
        self._width = 0
        self._max_entries = max_entries
        self._rendered: OrderedDict[int, _Entry[P]] = OrderedDict()
        """The entries holding strips, least recently drawn first (by ``id``)."""
        self._sync_scheduled = False
        self._follow_pending = False
        self._pinned = True
        """The last frame showed the end (kept across a resize, which moves the end)."""
        self.auto_follow = True

    # --- to override ------------------------------------------------------------------------
    def render_payload(self, payload: P, width: int) -> list[Strip]:
        """The lines of one entry at ``width`` cells."""
        text = payload if isinstance(payload, Text) else Text(str(payload))
        console = self.app.console
        return text_to_strips(console, text.wrap(console, width, overflow="fold"))

    def estimate_height(self, payload: P, width: int) -> int:
        """A cheap guess of the entry's height at ``width`` (for entries not shown yet)."""
        return estimate_lines(payload.plain if isinstance(payload, Text) else str(payload), width)

    # --- queries ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._entries)

    @property
    def line_count(self) -> int:
        return self._total

    def get(self, key: str) -> P | None:
        entry = self._by_key.get(key)
        return None if entry is None else entry.payload

    def payloads(self) -> list[P]:
        return [e.payload for e in self._entries]

    def plain_lines(self) -> list[str]:
        """Every line as plain text (tests, exports): renders every entry."""
        out: list[str] = []
        for entry in self._entries:
            out.extend(s.text.rstrip() for s in self._render_entry(entry))
        self._reindex(0)
        return out

    # --- mutations --------------------------------------------------------------------------
    def append(self, payload: P, key: str | None = None) -> None:
        follow = self._at_end()
        entry = _Entry(key, payload)
        if key is not None:
            old = self._by_key.get(key)
            if old is not None:
                self._remove_entry(old)
            self._by_key[key] = entry
        self._entries.append(entry)
        self._starts.append(self._total)
        self._render_entry(entry)
        self._total += entry.height
        if self._max_entries is not None and len(self._entries) > self._max_entries * 1.1:
            self._trim(len(self._entries) - self._max_entries)
        self._changed(follow)

    def update(self, key: str, payload: P | None = None) -> bool:
        """Render the entry ``key`` again (with a new payload, or its mutated one)."""
        entry = self._by_key.get(key)
        if entry is None:
            return False
        follow = self._at_end()
        if payload is not None:
            entry.payload = payload
        old_height = entry.height
        self._forget(entry)
        self._render_entry(entry)
        if entry.height != old_height:
            self._reindex(self._index_of(entry))
        self._changed(follow)
        return True

    def remove_entry(self, key: str) -> bool:
        entry = self._by_key.get(key)
        if entry is None:
            return False
        self._remove_entry(entry)
        self._changed(False)
        return True

    def clear(self) -> None:
        self._entries.clear()
        self._by_key.clear()
        self._rendered.clear()
        self._starts.clear()
        self._total = 0
        self.scroll_to(0, 0, animate=False)
        self._changed(False)

    def rerender_all(self) -> None:
        """Styles changed (theme): render the entries again as they show."""
        self._invalidate()
        self._changed(self._at_end())

    # --- internals --------------------------------------------------------------------------
    def _render_entry(self, entry: _Entry[P]) -> list[Strip]:
        rendered = self._rendered
        strips = entry.strips
        if strips is None:
            if self._width <= 0:
                entry.height = 0
                return []
            strips = self.render_payload(entry.payload, self._width) or [Strip([], 0)]
            entry.strips = strips
            entry.height = len(strips)
            rendered[id(entry)] = entry
            if len(rendered) > KEEP_RENDERED:
                _, oldest = rendered.popitem(last=False)
                oldest.strips = None  # its height stays: it is exact
        else:
            rendered.move_to_end(id(entry))
        return strips

    def _forget(self, entry: _Entry[P]) -> None:
        self._rendered.pop(id(entry), None)
        entry.strips = None

    def _invalidate(self) -> None:
        """Forget every rendering: estimated heights, the last entries rendered at once."""
        width = self._width
        entries = self._entries
        tail = max(0, len(entries) - RENDER_ON_RESIZE)
        for entry in self._rendered.values():
            entry.strips = None
        self._rendered.clear()
        for i, entry in enumerate(entries):
            if i >= tail:
                self._render_entry(entry)
            else:
                entry.height = self.estimate_height(entry.payload, width) if width > 0 else 0
        self._reindex(0)

    def _index_of(self, entry: _Entry[P]) -> int:
        for i in range(len(self._entries) - 1, -1, -1):  # updates are nearly always at the end
            if self._entries[i] is entry:
                return i
        raise ValueError("entry not in log")

    def _remove_entry(self, entry: _Entry[P]) -> None:
        i = self._index_of(entry)
        del self._entries[i]
        del self._starts[i]
        self._forget(entry)
        if entry.key is not None and self._by_key.get(entry.key) is entry:
            del self._by_key[entry.key]
        self._reindex(i)

    def _trim(self, count: int) -> None:
        for entry in self._entries[:count]:
            if entry.key is not None and self._by_key.get(entry.key) is entry:
                del self._by_key[entry.key]
            self._forget(entry)
        del self._entries[:count]
        del self._starts[:count]
        self._reindex(0)

    def _reindex(self, start: int) -> None:
        """Recompute the first line of every entry from ``start`` on."""
        line = 0
        if start > 0:
            prev = start - 1
            line = self._starts[prev] + self._entries[prev].height
        starts = self._starts
        entries = self._entries
        for i in range(start, len(entries)):
            starts[i] = line
            line += entries[i].height
        self._total = line

    def _at_end(self) -> bool:
        return self.auto_follow and (self._follow_pending or self._pinned)

    def _changed(self, follow: bool) -> None:
        """Sync the scroll size (once per batch of changes, after the current message)."""
        self._follow_pending = self._follow_pending or follow
        if not self._sync_scheduled:
            self._sync_scheduled = True
            self.call_next(self._sync)

    def _sync(self) -> None:
        self._sync_scheduled = False
        follow, self._follow_pending = self._follow_pending, False
        self._set_virtual_size(Size(self._width, self._total))
        self.refresh()
        if follow:
            self.scroll_end(animate=False, immediate=False, x_axis=False)

    def _set_virtual_size(self, size: Size) -> None:
        """Setting ``virtual_size`` lays the whole screen out again (Textual declares it with
        ``layout=True``), which costs a full repaint: tens of ms, on every appended line. With
        the vertical scrollbar always shown and the width unchanged, more lines change nothing
        in the layout: only the scrollbar (and the scroll range) is updated."""
        old = self.virtual_size
        if size == old:
            return
        scroll_update = getattr(self, "_scroll_update", None)  # Textual's, private
        if (
            scroll_update is None
            or size.width != old.width
            or self.styles.overflow_y != "scroll"
            or self.styles.overflow_x == "scroll"
        ):
            self.virtual_size = size
            return
        self.set_reactive(ScrollView.virtual_size, size)
        scroll_update(size)

    def _settle_visible(self) -> None:
        """Render the entries in view that only have an estimated height, and fix the offsets."""
        top = self.scroll_offset.y
        bottom = top + self.scrollable_content_region.height
        follow = self._at_end()
        for _ in range(8):
            if not self._entries:
                return
            i = max(0, bisect_right(self._starts, top) - 1)
            first_changed: int | None = None
            while i < len(self._entries) and self._starts[i] < bottom:
                entry = self._entries[i]
                if entry.strips is None:
                    old = entry.height
                    self._render_entry(entry)
                    if entry.height != old and first_changed is None:
                        first_changed = i
                i += 1
            if first_changed is None:
                return
            self._reindex(first_changed)
            self._changed(follow)

    def on_resize(self, event: Resize) -> None:
        follow = self.auto_follow and (self._pinned or self._follow_pending)
        width = self.scrollable_content_region.width
        if width != self._width:
            self._width = width
            self._invalidate()
        self._changed(follow)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._pinned = new_value >= self.max_scroll_y - 1

    def render_lines(self, crop: Region) -> list[Strip]:
        self._settle_visible()
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        style = self.rich_style
        index = scroll_y + y
        if index >= self._total or not self._entries:
            return Strip.blank(width, style)
        i = bisect_right(self._starts, index) - 1
        strips = self._render_entry(self._entries[i])
        offset = index - self._starts[i]
        if offset >= len(strips):
            return Strip.blank(width, style)
        return strips[offset].crop_extend(scroll_x, scroll_x + width, style).apply_style(style)
