"""A frame's lines are freed with it: no Textual strip refers to itself (voicetui.tui.strip_cycles)."""

from __future__ import annotations

import sys

from rich.segment import Segment
from textual.strip import Strip

from voicetui.tui.strip_cycles import avoid_strip_self_references


def test_a_strip_cut_where_nothing_changes_holds_no_reference_to_itself() -> None:
    """(Else it is a reference cycle: freed by the garbage collector only, in its pauses.)"""
    avoid_strip_self_references()
    strip = Strip([Segment("hello")], 5)
    references = sys.getrefcount(strip)
    assert strip.divide([5]) == [strip] and strip.divide([5, 9]) == [strip]
    assert strip.crop_extend(0, 5, None) is strip
    assert sys.getrefcount(strip) == references


def test_other_cuts_are_textuals() -> None:
    avoid_strip_self_references()
    avoid_strip_self_references()  # (patched once)
    strip = Strip([Segment("hello world")], 11)
    assert [s.text for s in strip.divide([5, 11])] == ["hello", " world"]
    assert strip.crop_extend(6, 14, None).text == "world   "
    assert strip.crop_extend(0, 5, None).text == "hello"
