"""``voicetui eval``: scenario files (YAML) run against an agent, headless, every turn scored.

:mod:`.scenario` the schema, :mod:`.source` reading files (errors with file, line and field),
:mod:`.checks` the per-turn checks, :mod:`.judge` the LLM judge, :mod:`.speech` the user's voice
in audio mode, :mod:`.runner` sessions, :mod:`.report` table, JUnit and JSON,
:mod:`.command` the command line.
"""
