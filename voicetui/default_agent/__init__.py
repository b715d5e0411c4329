"""The agent voicetui talks as when no ``--agent`` is given: a helpful voice assistant with real
local tools (time, calculator, timers that speak, notes)."""

from __future__ import annotations

from .agent import INSTRUCTIONS, DefaultAgent
from .calculator import CalculatorError, evaluate, format_number
from .clock import TimeZoneError, current_time, find_zone
from .notes import Note, NotesStore, default_notes_path
from .timers import Timer, TimerManager, describe_duration

__all__ = [
    "INSTRUCTIONS",
    "CalculatorError",
    "DefaultAgent",
    "Note",
    "NotesStore",
    "TimeZoneError",
    "Timer",
    "TimerManager",
    "current_time",
    "default_notes_path",
    "describe_duration",
    "evaluate",
    "find_zone",
    "format_number",
]
