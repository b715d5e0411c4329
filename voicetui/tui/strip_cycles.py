"""A workaround for Textual's ``Strip``: no strip refers to itself.

``Strip.divide`` and ``Strip.crop_extend`` cache their results on the strip, and when the call
changes nothing the result is the strip itself (``[self]``, ``self``): the strip then refers to
itself through its cache. The compositor divides every line of every widget it draws, so every
line of every frame became a reference cycle that only the garbage collector frees: while turns
stream in, Python's young collections freed 20,000–30,000 such objects each and took 30–80 ms of
CPU, the longest key→screen delays (``scripts/bench_tui.py``). Returned as they are, uncached,
those strips are freed as soon as the frame is done with them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.style import Style
from textual.strip import Strip

_PATCHED = "__voicetui_no_self_cache__"


def avoid_strip_self_references() -> None:
    """Patch ``Strip.divide`` and ``Strip.crop_extend`` (once): a call that changes nothing
    returns the strip without caching it on itself; every other call is Textual's own."""
    if getattr(Strip.divide, _PATCHED, False):
        return
    divide = Strip.divide
    crop_extend = Strip.crop_extend

    def divide_without_self(self: Strip, cuts: Iterable[int]) -> Sequence[Strip]:
        length = self.cell_length
        kept = [cut for cut in cuts if cut <= length]  # (as Textual filters them)
        if kept == [length]:
            return [self]
        return divide(self, kept)

    def crop_extend_without_self(self: Strip, start: int, end: int, style: Style | None) -> Strip:
        if start <= 0 and end == self.cell_length:
            return self
        return crop_extend(self, start, end, style)

    setattr(divide_without_self, _PATCHED, True)
    Strip.divide = divide_without_self  # type: ignore[method-assign]
    Strip.crop_extend = crop_extend_without_self  # type: ignore[method-assign]
