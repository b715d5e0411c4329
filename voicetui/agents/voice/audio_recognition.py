"""Listening to the user: user audio goes to the VAD and the STT concurrently; their events
drive user state, transcripts and the end of the user's turn (endpointing).

``AudioRecognition`` knows nothing of the agent's speech: it reports what it hears through
:class:`RecognitionHooks`, implemented by the activity (see ``turn_taking.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterable, Callable
from typing import Any

import numpy as np
from livekit import rtc

from .._retry import Backoff
from ..audio import frame_duration
from ..metrics import STTMetrics, VADMetrics
from ..stt import SpeechEvent, SpeechEventType
from ..turn_detector import TurnDetector
from ..types import APIConnectOptions
from ..utils.aio import Chan, Feed, TaskSet, cancel_and_wait, now
from ..vad import VAD, SharedVADEvents, VADEvent, VADEventType
from .agent import ModelSettings
from .generation import iterate_node
from .recognition_audio import AudioClock, TurnAudio, finished_result
from .recognition_hooks import EndOfTurnInfo, EndpointingOptions, RecognitionHooks
from .turn_options import TurnDetectionMode

logger = logging.getLogger("voicetui.agents.voice")

# audio kept for replay into a reconnected STT stream: everything since the last final
# transcript, at most this much (older audio is dropped), and only this much while silent
_MAX_REPLAY_AUDIO = 30.0
_SILENT_REPLAY_AUDIO = 1.0
_VAD_METRICS_INTERVAL = 1.0  # seconds of audio between two VADMetrics


class AudioRecognition:
    """One listening pipeline (per agent activity)."""

    def __init__(
        self,
        hooks: RecognitionHooks,
        *,
        vad: VAD | None,
        stt_node: Callable[[AsyncIterable[rtc.AudioFrame], ModelSettings], Any] | None,
        stt_label: str,
        turn_detection: TurnDetectionMode,
        endpointing: Callable[[], EndpointingOptions],
        turn_detector: TurnDetector | None = None,
        preemptive_generation: Callable[[], bool],
        stt_conn_options: APIConnectOptions,
        vad_events: SharedVADEvents | None = None,
    ) -> None:
        self._hooks = hooks
        self._vad = vad
        self._shared_vad = vad_events
        self._stt_node = stt_node
        self._stt_label = stt_label
        self._mode = turn_detection
        self._turn_detector = turn_detector
        self._turn_audio = TurnAudio(keep=8.0)
        self._eot_task: asyncio.Task[float | None] | None = None
        self._eot_failed = False  # (told once)
        self._endpointing = endpointing
        self._preemptive = preemptive_generation
        self._stt_conn = stt_conn_options
        self._tasks = TaskSet("AudioRecognition")
        self._vad_ch: Chan[rtc.AudioFrame] | None = None
        self._vad_clock = AudioClock()
        self._stt_ch: Chan[rtc.AudioFrame] | None = None
        self._replay: deque[rtc.AudioFrame] = deque()
        self._replay_duration = 0.0
        self._stt_audio = 0.0  # audio pushed to the STT since its last metrics
        self._eou_task: asyncio.Task[None] | None = None
        self._final_waiters: list[asyncio.Future[None]] = []
        # the current user turn
        self._transcript = ""
        self._interim = ""
        self._confidences: list[float] = []
        self._speaking = False
        self._started_speaking_at: float | None = None
        self._last_speaking_time: float | None = None
        self._last_final_at: float | None = None
        # VAD metrics
        self._vad_audio = 0.0
        self._vad_inference_total = 0.0
        self._vad_inference_count = 0
        self._vad_idle_since = now()
        self._closed = False

    # --- state ------------------------------------------------------------------------------
    @property
    def mode(self) -> TurnDetectionMode:
        return self._mode

    def set_turn_detector(self, detector: TurnDetector | None) -> None:
        """The end-of-turn model asked at the VAD's pauses (None: silence decides)."""
        self._turn_detector = detector

    def set_mode(self, mode: TurnDetectionMode) -> None:
        """Switch turn detection while listening (e.g. push-to-talk opens a manual turn)."""
        if mode == self._mode:
            return
        self._mode = mode
        if mode == "manual" and self._eou_task is not None:
            self._eou_task.cancel()  # no automatic commit of what was heard so far
            self._eou_task = None

    @property
    def current_transcript(self) -> str:
        """Finals of the current turn plus the pending interim transcript."""
        return " ".join(t for t in (self._transcript, self._interim) if t)

    @property
    def user_speaking(self) -> bool:
        return self._speaking

    # --- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        if self._vad is not None:
            self._vad_ch = Chan()
            self._tasks.create(self._vad_loop(self._vad), name="AudioRecognition.vad")
        if self._stt_node is not None:
            self._stt_ch = Chan()
            self._tasks.create(self._stt_loop(), name="AudioRecognition.stt")

    async def aclose(self) -> None:
        self._closed = True
        for ch in (self._vad_ch, self._stt_ch):
            if ch is not None:
                ch.close()
        await cancel_and_wait(*(t for t in (self._eou_task, self._eot_task) if t is not None))
        await self._tasks.aclose()
        for fut in self._final_waiters:
            if not fut.done():
                fut.cancel()

    def push_audio(self, frame: rtc.AudioFrame) -> None:
        if self._closed:
            return
        if self._vad_ch is not None and not self._vad_ch.closed:
            self._vad_clock.fed(frame)
            self._vad_ch.send_nowait(frame)
            if self._turn_detector is not None:
                self._turn_audio.push(frame)
        if self._stt_node is None:
            return
        d = frame_duration(frame)
        self._replay.append(frame)
        self._replay_duration += d
        limit = (
            _MAX_REPLAY_AUDIO
            if self._speaking or self._interim or self._vad is None
            else _SILENT_REPLAY_AUDIO
        )
        while self._replay and self._replay_duration > limit:
            self._replay_duration -= frame_duration(self._replay.popleft())
        if self._stt_ch is not None and not self._stt_ch.closed:
            self._stt_audio += d
            self._stt_ch.send_nowait(frame)

    def on_input_stopped(self) -> None:
        """The audio input went away or was muted: a voice in progress has ended."""
        if self._speaking:
            self._speaking = False
            self._last_speaking_time = now()
            self._hooks.on_end_of_speech(None, self._last_speaking_time)
            if self._mode == "vad":
                self._run_eou_detection()
        self._restart_vad()

    def _restart_vad(self) -> None:
        """A fresh VAD stream, so the old one's half-heard utterance does not linger."""
        if self._vad is not None and self._vad_ch is not None:
            self._vad_ch.close()
            self._vad_ch = Chan()
            self._tasks.create(self._vad_loop(self._vad), name="AudioRecognition.vad")

    # --- manual turns -----------------------------------------------------------------------
    async def commit_user_turn(self, *, transcript_timeout: float) -> None:
        """End the user's turn now (push-to-talk release). Waits up to ``transcript_timeout``
        for the final transcript of audio already heard."""
        if self._eou_task is not None:
            self._eou_task.cancel()
        if self._speaking:
            self._speaking = False
            self._last_speaking_time = now()
            self._hooks.on_end_of_speech(None, self._last_speaking_time)
            self._restart_vad()  # so that the user speaking on is a new start of speech
        if self._interim or (self._started_speaking_at is not None and not self._transcript):
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._final_waiters.append(fut)
            try:
                await asyncio.wait_for(asyncio.shield(fut), transcript_timeout)
            except TimeoutError:
                logger.info(
                    "no final transcript within %.1fs; committing what was heard",
                    transcript_timeout,
                )
            finally:
                if fut in self._final_waiters:
                    self._final_waiters.remove(fut)
        self._commit()

    def clear_user_turn(self) -> None:
        """Forget what the user said in this turn (push-to-talk cancelled)."""
        if self._eou_task is not None:
            self._eou_task.cancel()
        self._reset_turn()
        self._replay.clear()
        self._replay_duration = 0.0
        if self._stt_ch is not None:
            # restart the STT stream so audio it buffered is not transcribed into the next turn
            self._stt_ch.close()
            self._stt_ch = Chan()
            self._tasks.create(self._stt_loop(), name="AudioRecognition.stt")

    # --- VAD --------------------------------------------------------------------------------
    async def _vad_loop(self, vad: VAD) -> None:
        ch = self._vad_ch
        assert ch is not None
        backoff = Backoff(self._stt_conn)
        while not ch.closed or ch._items:
            stream = vad.stream()
            # its samples_index counts from the frames still queued (they go in first)
            self._vad_clock.new_stream(sum(frame_duration(f) for f in ch._items))
            # frames go straight from push_audio into the stream (no forwarding task)
            ch.bind(stream.push_frame, stream.end_input)

            def on_event(ev: VADEvent) -> None:
                backoff.reset()
                self._on_vad_event(ev)
                if self._shared_vad is not None:  # (the STT adapter listens there)
                    self._shared_vad.publish(ev)

            try:
                # events are handled as the VAD emits them (no task wake-up per event)
                await stream.pipe_to(on_event)
                return
            except Exception as e:
                delay = backoff.next_delay(e)
                retry = delay is not None
                self._hooks.on_error(
                    "vad",
                    f"{vad.label} failed: {e}" + ("; restarting it" if retry else "; giving up"),
                    e,
                    retry,
                )
                if delay is None:
                    return
                await asyncio.sleep(delay)
            finally:
                ch.unbind()
                await stream.aclose()

    def _vad_event_time(self, ev: VADEvent) -> float:
        """When the audio the event is about ended (loop time): from its position in the audio
        fed to the VAD, or, when the VAD does not say, when the event is handled."""
        if ev.samples_index <= 0 or self._vad is None:
            return now()
        rate = self._vad.capabilities.sample_rate or self._vad_clock.input_rate
        at = self._vad_clock.time_of(ev.samples_index / rate) if rate else None
        return min(at, now()) if at is not None else now()

    def _on_vad_event(self, ev: VADEvent) -> None:
        if ev.type == VADEventType.START_OF_SPEECH:
            if self._speaking:
                return
            self._speaking = True
            started = self._vad_event_time(ev) - ev.speech_duration
            if self._started_speaking_at is None:
                self._started_speaking_at = started
            self._turn_audio.turn_started(max(0.0, now() - started))
            if self._eou_task is not None:
                self._eou_task.cancel()  # the user goes on: not the end of the turn
            if self._eot_task is not None:
                self._eot_task.cancel()
                self._eot_task = None
            self._hooks.on_start_of_speech(ev, started)
        elif ev.type == VADEventType.INFERENCE_DONE:
            self._vad_inference_total += ev.inference_duration
            self._vad_inference_count += 1
            self._vad_audio += (
                self._vad.capabilities.update_interval if self._vad is not None else 0.0
            )
            if self._vad_audio >= _VAD_METRICS_INTERVAL:
                self._emit_vad_metrics()
            self._hooks.on_vad_inference_done(ev)
        elif ev.type == VADEventType.END_OF_SPEECH:
            if not self._speaking:
                return
            self._speaking = False
            self._last_speaking_time = self._vad_event_time(ev) - ev.silence_duration
            self._hooks.on_end_of_speech(ev, self._last_speaking_time)
            if self._mode == "vad":
                self._start_end_of_turn_prediction()
                self._run_eou_detection()

    def _emit_vad_metrics(self) -> None:
        t = now()
        self._hooks.on_metrics(
            VADMetrics(
                label=self._vad.label if self._vad is not None else "",
                idle_time=t - self._vad_idle_since,
                inference_duration_total=self._vad_inference_total,
                inference_count=self._vad_inference_count,
            )
        )
        self._vad_idle_since = t
        self._vad_audio = 0.0
        self._vad_inference_total = 0.0
        self._vad_inference_count = 0

    # --- STT --------------------------------------------------------------------------------
    async def _stt_loop(self) -> None:
        ch = self._stt_ch
        assert ch is not None and self._stt_node is not None
        backoff = Backoff(self._stt_conn)
        while not ch.closed:
            # a (re)connected stream first hears the audio since the last final transcript
            replay: list[rtc.AudioFrame] = []
            if backoff.failures:
                replay = list(self._replay)
                ch.clear()  # those frames are in the replay already

            # the default stt_node binds this feed to its stream: no forwarding task per frame
            feed = Feed(ch, replay)
            try:
                async for ev in iterate_node(self._stt_node(feed, ModelSettings())):
                    if ev.type in (
                        SpeechEventType.FINAL_TRANSCRIPT,
                        SpeechEventType.INTERIM_TRANSCRIPT,
                    ):
                        backoff.reset()
                    self._on_stt_event(ev)
                return
            except asyncio.CancelledError:
                raise
            except Exception as e:
                feed.unbind()  # the frames from now on wait in the channel for the next stream
                delay = backoff.next_delay(e)  # (a server's Retry-After is honoured)
                what = (
                    f"reconnecting in {delay:.1f}s, the audio meanwhile is kept"
                    if delay is not None
                    else f"gave up after {backoff.failures} attempts; type your messages instead"
                )
                self._hooks.on_error(
                    "stt",
                    f"{self._stt_label} stream failed: {e} ({what})",
                    e,
                    delay is not None,
                )
                if delay is None:
                    if self._stt_ch is ch:
                        self._stt_ch = None
                    return
                await asyncio.sleep(delay)

    def _on_stt_event(self, ev: SpeechEvent) -> None:
        if ev.type == SpeechEventType.START_OF_SPEECH:
            if self._mode == "stt" and self._eou_task is not None:
                self._eou_task.cancel()  # the STT hears the user going on
                self._eou_task = None
            if self._vad is None and not self._speaking:
                self._speaking = True
                if self._started_speaking_at is None:
                    self._started_speaking_at = now()
                if self._eou_task is not None:
                    self._eou_task.cancel()
                self._hooks.on_start_of_speech(None, now())
        elif ev.type == SpeechEventType.INTERIM_TRANSCRIPT:
            text = ev.text.strip()
            if text:
                self._interim = text
                self._hooks.on_interim_transcript(ev)
        elif ev.type == SpeechEventType.PREFLIGHT_TRANSCRIPT:
            # the reply may start on what the final will likely be; no text: withdrawn
            if self._preemptive() and self._mode != "manual":
                if text := ev.text.strip():
                    self._hooks.on_preemptive_generation(f"{self._transcript} {text}".strip())
                else:
                    self._hooks.discard_preemptive()
        elif ev.type == SpeechEventType.FINAL_TRANSCRIPT:
            text = ev.text.strip()
            self._interim = ""
            self._emit_stt_metrics()
            self._replay.clear()
            self._replay_duration = 0.0
            if not text:
                self._wake_final_waiters()
                return
            self._transcript = f"{self._transcript} {text}".strip()
            if ev.alternatives:
                self._confidences.append(ev.alternatives[0].confidence)
            self._last_final_at = now()
            if self._started_speaking_at is None:
                self._started_speaking_at = now()
            self._hooks.on_final_transcript(ev)
            self._wake_final_waiters()
            if self._preemptive() and self._mode != "manual":
                self._hooks.on_preemptive_generation(self._transcript)
            if (
                not self._speaking
                and self._mode in ("vad", "stt")
                and (self._eou_task is not None or self._last_speaking_time is not None)
            ):
                # the final came after the end of speech: endpoint from it now
                self._run_eou_detection()
        elif ev.type == SpeechEventType.END_OF_SPEECH:
            # the user's speaking state follows the VAD when there is one; the STT's end of
            # speech only ends the turn (turn_detection="stt")
            if self._vad is None and self._speaking:
                self._speaking = False
                self._hooks.on_end_of_speech(None, now())
            if self._vad is None or self._mode == "stt":
                self._last_speaking_time = now()
            if self._mode == "stt":
                self._run_eou_detection()

    def _emit_stt_metrics(self) -> None:
        delay = 0.0
        if self._last_speaking_time is not None and not self._speaking:
            delay = max(0.0, now() - self._last_speaking_time)
        self._hooks.on_metrics(
            STTMetrics(
                label=self._stt_label,
                duration=delay,
                audio_duration=self._stt_audio,
                streamed=True,
            )
        )
        self._stt_audio = 0.0

    def _wake_final_waiters(self) -> None:
        for fut in self._final_waiters:
            if not fut.done():
                fut.set_result(None)

    # --- endpointing ------------------------------------------------------------------------
    def _run_eou_detection(self) -> None:
        if self._eou_task is not None:
            self._eou_task.cancel()
        self._eou_task = self._tasks.create(self._eou(), name="AudioRecognition.eou")

    async def _eou(self) -> None:
        opts = self._endpointing()
        end = self._last_speaking_time if self._last_speaking_time is not None else now()
        min_delay = opts.min_delay
        if self._eot_task is not None:
            # the end-of-turn model decides how long a pause may be: likely done → the
            # shortest delay; the user may go on → wait up to the longest
            probability = await asyncio.shield(self._eot_task)
            detector = self._turn_detector
            if probability is not None and detector is not None:
                if probability < detector.threshold:
                    min_delay = opts.max_delay
        if self._transcript:
            # committed min_delay after the voice ended (the final may have come later)
            await asyncio.sleep(max(0.0, end + min_delay - now()))
        else:
            # no final yet: a final restarts this; commit what was heard at max_delay at most
            await asyncio.sleep(max(0.0, end + opts.max_delay - now()))
            if not self._transcript and self._interim:
                logger.info(
                    "no final transcript after %.1fs; using the interim one", opts.max_delay
                )
                self._transcript, self._interim = self._interim, ""
        self._eou_task = None
        self._commit()

    # --- the end-of-turn model --------------------------------------------------------------
    def _start_end_of_turn_prediction(self) -> None:
        """At the end of speech: ask the model about the turn so far (it runs while the
        endpointing delay counts down)."""
        detector = self._turn_detector
        if detector is None:
            return
        if self._eot_task is not None:
            self._eot_task.cancel()
        audio, rate = self._turn_audio.samples()
        self._eot_task = self._tasks.create(
            self._predict_end_of_turn(detector, audio, rate), name="AudioRecognition.eot"
        )

    async def _predict_end_of_turn(
        self, detector: TurnDetector, audio: np.ndarray, rate: int
    ) -> float | None:
        try:
            probability = await detector.predict_end_of_turn(audio, rate)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            # without the model the turn ends as with the VAD alone; said once
            if not self._eot_failed:
                self._eot_failed = True
                self._hooks.on_error(
                    "turn_detector",
                    f"the end-of-turn model failed ({type(e).__name__}: {e}); "
                    "turns end on silence alone",
                    e,
                    True,
                )
            return None
        self._eot_failed = False
        return min(1.0, max(0.0, float(probability)))

    def _commit(self) -> None:
        text = self._transcript.strip()
        if not text and self._interim:
            text = self._interim
        if not text:
            self._reset_turn()
            return
        t = now()
        end = self._last_speaking_time
        info = EndOfTurnInfo(
            new_transcript=text,
            started_speaking_at=self._started_speaking_at,
            stopped_speaking_at=end,
            transcription_delay=(
                max(0.0, self._last_final_at - end)
                if self._last_final_at is not None and end is not None
                else 0.0
            ),
            end_of_utterance_delay=max(0.0, t - end) if end is not None else 0.0,
            transcript_confidence=(
                sum(self._confidences) / len(self._confidences) if self._confidences else 1.0
            ),
        )
        detector = self._turn_detector
        if detector is not None and (probability := finished_result(self._eot_task)) is not None:
            info.end_of_turn_probability = probability
            info.end_of_turn_threshold = detector.threshold
        if self._hooks.on_end_of_turn(info):
            self._reset_turn()

    def _reset_turn(self) -> None:
        if self._eot_task is not None and not self._eot_task.done():
            self._eot_task.cancel()
        self._eot_task = None
        if not self._speaking:
            self._turn_audio.turn_ended()
        self._transcript = ""
        self._interim = ""
        self._confidences = []
        self._last_final_at = None
        self._started_speaking_at = now() if self._speaking else None
