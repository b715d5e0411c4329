"""The session runtime: an AgentSession on its own loop thread, driven by the TUI or --headless."""
