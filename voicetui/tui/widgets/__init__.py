"""Widgets of the TUI; they never touch the session (the app updates them)."""
