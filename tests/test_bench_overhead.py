"""The overhead benchmark's workers run from a checkout and every turn gets its reply (the
numbers themselves are not asserted: that is what scripts/bench_overhead.py reports)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["voicetui", "null"])
def test_worker_runs_a_short_conversation(framework: str, tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    # turn 1 calls the tool; a short script (each turn is paced in real time: the defaults,
    # 1 s of voice and 1 s of reply audio, made this test 12 s per framework)
    timings = {
        "turns": 3,
        "tool_every": 2,
        "speech": 0.4,
        "stt_interim": 0.2,
        "gap": 0.2,
        "llm_ttft": 0.1,
        "reply_words": 6,
        "tts_audio": 0.4,
    }
    subprocess.run(
        [
            sys.executable,
            str(SCRIPTS / "overhead" / "worker.py"),
            "--framework",
            framework,
            "--sessions",
            "2",
            "--timings",
            json.dumps(timings),
            "--out",
            str(out),
        ],
        cwd=SCRIPTS,
        check=True,
        timeout=120,
    )
    run = json.loads(out.read_text())
    assert run["errors"] == []
    assert run["turns_total"] == 6
    assert all(t["added"] is not None for t in run["turns"])  # every turn was answered
    assert [t["tool"] for t in run["turns"] if t["session"] == 0] == [False, True, False]
    # the reply can't start before the scripted delays (endpointing + LLM + TTS)
    assert all(t["added"] > -0.005 for t in run["turns"])
