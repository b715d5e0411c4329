from __future__ import annotations

from voicetui.cli import main

raise SystemExit(main())
