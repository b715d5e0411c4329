"""Whisper on a short encoder window: the fast path for the utterances of a voice turn.

faster-whisper always pads the audio to 30 s of features, so the encoder's cost does not depend
on the utterance: ~0.4 s on two cores for Whisper tiny.en, most of a turn's transcription time.
CTranslate2's encoder takes shorter inputs too: a 10 s window costs a sixth of that (~60 ms).
Whisper was trained on 30 s windows, and a window barely longer than the speech makes it repeat
itself or drop words; with at least 2 s of padded silence after the speech the transcripts are
the 30 s ones (measured on 66 espeak-ng and Piper utterances of 0.3-6.4 s: 70 vs 71 word errors
in 498 words, no runaway repetition; 10 s windows for 8-12 s utterances made 53 errors vs 30).

So an utterance of up to ``window - 2`` seconds is decoded greedily (or with the beam asked for)
on a ``window``-second input; a result that looks like a runaway or an unsure decode (compression
ratio > 2.4, average log-probability < -1, more words than anyone says in that time, the token
limit reached) is thrown away and the caller falls back to the standard 30 s path, as
faster-whisper itself would fall back to sampling at higher temperatures.
"""

from __future__ import annotations

import threading
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

_FRAMES_PER_SECOND = 100  # Whisper's log-mel hop is 10 ms
_MIN_PADDING = 2.0  # seconds of silence the window keeps after the speech
_MAX_COMPRESSION_RATIO = 2.4  # faster-whisper's default compression_ratio_threshold
_MIN_AVG_LOGPROB = -1.0  # faster-whisper's default log_prob_threshold
_MAX_WORDS_PER_SECOND = 6.0
_TOKENS_PER_SECOND = 10  # token budget: generous for speech (~3-5 tokens/s)
_MAX_LENGTH = 448  # Whisper's decoder context


@dataclass(frozen=True)
class ShortResult:
    text: str
    language: str
    avg_logprob: float
    tokens: int


class ShortWindowDecoder:
    """Decodes short utterances on a ``window``-second encoder input; :meth:`transcribe` returns
    None when the utterance is too long for it or the result is not to be trusted."""

    def __init__(self, whisper: Any, *, window: float = 10.0) -> None:
        if window < _MIN_PADDING + 1.0 or window > 30.0:
            raise ValueError("the short window must be between 3 and 30 seconds")
        self._whisper = whisper  # faster_whisper.WhisperModel
        self._frames = int(window * _FRAMES_PER_SECOND)
        self._frames += self._frames % 2  # the encoder's convolution halves the frame count
        self.max_audio = window - _MIN_PADDING
        self._tokenizers: dict[str | None, tuple[Any, list[int], list[int]]] = {}
        self._lock = threading.Lock()

    def _tokenizer(self, language: str | None) -> tuple[Any, list[int], list[int]]:
        """The tokenizer for ``language``, its prompt and the tokens to suppress."""
        with self._lock:
            cached = self._tokenizers.get(language)
            if cached is None:
                from faster_whisper.tokenizer import Tokenizer  # type: ignore[import-untyped]
                from faster_whisper.transcribe import (  # type: ignore[import-untyped]
                    get_suppressed_tokens,
                )

                model = self._whisper.model
                lang = language if model.is_multilingual else "en"
                tokenizer = Tokenizer(
                    self._whisper.hf_tokenizer,
                    model.is_multilingual,
                    task="transcribe",
                    language=lang,
                )
                prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
                suppress = list(get_suppressed_tokens(tokenizer, [-1]))
                cached = self._tokenizers[language] = (tokenizer, prompt, suppress)
            return cached

    def transcribe(
        self, audio: np.ndarray, language: str | None, beam_size: int
    ) -> ShortResult | None:
        """``audio``: float32 mono at 16 kHz. Runs on the Whisper thread."""
        duration = len(audio) / 16000
        if duration > self.max_audio:
            return None
        if language is None and self._whisper.model.is_multilingual:
            return None  # language detection: the standard path does it
        try:
            tokenizer, prompt, suppress = self._tokenizer(language)
        except ValueError:
            return None  # a language code Whisper does not know: the standard path says so
        features = self._whisper.feature_extractor(audio)
        window = np.zeros((features.shape[0], self._frames), dtype=np.float32)
        n = min(self._frames, features.shape[1])
        window[:, :n] = features[:, :n]  # zero padding, as faster-whisper's pad_or_trim
        encoded = self._whisper.encode(window)
        max_new = int(16 + _TOKENS_PER_SECOND * duration)
        max_length = min(_MAX_LENGTH, len(prompt) + max_new)
        result = self._whisper.model.generate(
            encoded,
            [prompt],
            beam_size=beam_size,
            max_length=max_length,
            return_scores=True,
            suppress_blank=True,
            suppress_tokens=suppress,
        )[0]
        tokens: list[int] = list(result.sequences_ids[0])
        if len(prompt) + len(tokens) >= max_length:
            return None  # never stopped: a runaway
        text = str(tokenizer.decode(tokens)).strip()
        # the score is the sum of log-probabilities / length (length_penalty 1), as faster-whisper
        avg_logprob = float(result.scores[0]) * len(tokens) / (len(tokens) + 1)
        if (
            not text  # speech or noise? the standard path decides, with its no-speech check
            or _compression_ratio(text) > _MAX_COMPRESSION_RATIO
            or avg_logprob < _MIN_AVG_LOGPROB
            or len(text.split()) > _MAX_WORDS_PER_SECOND * duration + 3
        ):
            return None
        return ShortResult(text, str(tokenizer.language_code), avg_logprob, len(tokens))


def _compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data))
