"""``--input-wav`` is checked before any model loads: a missing, empty or bad file exits 2 with
the file's name (it used to say "EOFError", or fail only after the models loaded)."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

from voicetui.agents.audio import read_audio
from voicetui.cli import main


def _boom(*args: object, **kwargs: object) -> None:
    raise AssertionError("models were looked at before the input file was checked")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        (b"", "empty or cut short, not an audio file"),
        (b"RIFF\x10\x00\x00\x00WAVEjunkjunk", "not an audio file"),
        ("silent", "holds no audio"),
    ],
)
def test_a_bad_input_wav_exits_2_naming_it(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    content: bytes | str | None,
    message: str,
) -> None:
    monkeypatch.setenv("VOICETUI_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setattr("voicetui.plugins.selection.check_requirements", _boom)
    path = tmp_path / "question.wav"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(1 if content == "8bit" else 2)
            w.setframerate(16000)
            w.writeframes(b"\x80" * 160 if content == "8bit" else b"")
    assert main(["--headless", "--input-wav", str(path)]) == 2
    err = capsys.readouterr().err
    assert "question.wav" in err and message in err
    assert "Traceback" not in err and "EOFError" not in err
    if content == b"":
        with pytest.raises(ValueError, match=r"question\.wav: empty"):
            read_audio(path)
