"""``python -m voicetui``: the same as the ``voicetui`` command."""

from __future__ import annotations

from voicetui.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
