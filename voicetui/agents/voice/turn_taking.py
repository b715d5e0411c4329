"""Turn-taking for one agent activity: what the agent does with what ``AudioRecognition``
hears — user state, interruptions by voice, false interruptions (pause, then resume or give
up), committing user turns (``on_user_turn_completed``, EOU metrics) and preemptive replies."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..llm import ChatContext, ChatMessage
from ..llm.tool_context import StopResponse
from ..metrics import EOUMetrics, STTMetrics, VADMetrics
from ..stt import SpeechEvent
from ..utils.aio import TaskSet, cancel_and_wait, now
from ..vad import VADEvent
from .events import AgentFalseInterruptionEvent, AgentState, UserInputTranscribedEvent
from .io import AudioOutput
from .recognition_hooks import EndOfTurnInfo
from .speech_handle import SpeechHandle
from .turn_latency import TurnTiming

if TYPE_CHECKING:
    from .agent_activity import AgentActivity
    from .audio_recognition import AudioRecognition

logger = logging.getLogger("voicetui.agents.voice")


@dataclass
class _FalseInterruption:
    """A speech stopped by user voice that has no words yet: its audio paused (it was playing
    on an output that can pause), held (nothing of it was out yet), or interrupted."""

    speech: SpeechHandle
    paused_output: AudioOutput | None
    held: bool = False
    timer: asyncio.Task[None] | None = None


@dataclass
class _Preemptive:
    handle: SpeechHandle
    transcript: str
    ctx_fingerprint: str
    tool_ids: tuple[str, ...]


def _fingerprint(ctx: ChatContext) -> str:
    return json.dumps(
        [
            item.model_dump(mode="json", exclude={"id", "created_at", "metrics"})
            for item in ctx.items
        ],
        sort_keys=True,
    )


def _words(text: str) -> int:
    return len(text.split())


class TurnTaking:
    """Implements :class:`RecognitionHooks` for an :class:`AgentActivity`."""

    def __init__(self, activity: AgentActivity) -> None:
        # (weak: the activity owns this; no cycle keeps a closed session alive)
        self._activity: AgentActivity = weakref.proxy(activity)
        self._session = activity.session
        self._recognition: AudioRecognition | None = None
        self._tasks = TaskSet("TurnTaking")
        self._false_interruption: _FalseInterruption | None = None
        self._preemptive: _Preemptive | None = None
        self._turn_task: asyncio.Task[None] | None = None
        self._postponed: SpeechHandle | None = None
        """A reply held back, before any of it was out, because the user started speaking."""

    def attach(self, recognition: AudioRecognition | None) -> None:
        self._recognition = recognition

    async def aclose(self) -> None:
        fi, self._false_interruption = self._false_interruption, None
        if fi is not None:
            await cancel_and_wait(fi.timer)
            self._release_pause(fi)
        postponed, self._postponed = self._postponed, None
        if postponed is not None:
            postponed._release()
        self.discard_preemptive()
        await self._tasks.aclose()

    @property
    def user_turn_done(self) -> bool:
        return self._turn_task is None or self._turn_task.done()

    async def wait_for_user_turn(self) -> None:
        """Until the last committed user turn is in history and its reply scheduled."""
        if self._turn_task is not None:
            await asyncio.wait({self._turn_task})

    def _current_transcript(self) -> str:
        return self._recognition.current_transcript if self._recognition is not None else ""

    # --- what the user does -----------------------------------------------------------------
    def on_start_of_speech(self, ev: VADEvent | None, at: float) -> None:
        self._session._update_user_state("speaking", at=at)
        fi = self._false_interruption
        if fi is not None and fi.timer is not None:
            # the user speaks again: the false-interruption window starts over at its end
            fi.timer.cancel()
            fi.timer = None
        self._postpone_reply()
        if ev is None:  # no VAD: the STT's start of speech is all we know
            self._interrupt_by_voice()

    def _postpone_reply(self) -> None:
        """The user speaks while the agent is still thinking: its reply waits until the voice
        ends, rather than start over the user (a longer voice is an interruption attempt)."""
        speech = self._activity.current_speech
        if speech is not None and self._session.agent_state == "thinking":
            self._postpone(speech)

    def on_speech_authorized(self, speech: SpeechHandle) -> None:
        """A speech's turn to play has come: not while the user is talking (a tool's reply,
        a queued announcement) — it waits until the voice ends."""
        if self._recognition is not None and self._recognition.user_speaking:
            self._postpone(speech)

    def _postpone(self, speech: SpeechHandle) -> None:
        if speech.done() or speech.interrupted or speech.held or not speech.allow_interruptions:
            return
        logger.debug("user voice: %s waits until the user stops", speech.id)
        speech._hold()
        self._postponed = speech

    def on_vad_inference_done(self, ev: VADEvent) -> None:
        if (
            ev.speaking
            and self._recognition is not None
            and self._recognition.user_speaking  # (not the tail of a turn already committed)
            and ev.speech_duration >= self._activity.options.min_interruption_duration
        ):
            self._interrupt_by_voice()

    def on_end_of_speech(self, ev: VADEvent | None, at: float) -> None:
        self._session._update_user_state("listening", at=at)
        fi = self._false_interruption
        if fi is not None and fi.timer is None:
            self._start_false_interruption_timer(fi)
        postponed, self._postponed = self._postponed, None
        if postponed is not None and not postponed.done() and not postponed.interrupted:
            postponed._release()  # a short voice with no words: the reply goes ahead

    def on_interim_transcript(self, ev: SpeechEvent) -> None:
        self._session._emit_event(
            UserInputTranscribedEvent(
                transcript=ev.text, is_final=False, language=_language(ev) or None
            )
        )
        self._on_words()

    def on_final_transcript(self, ev: SpeechEvent) -> None:
        self._session._emit_event(
            UserInputTranscribedEvent(
                transcript=ev.text, is_final=True, language=_language(ev) or None
            )
        )
        self._session._model_succeeded("stt")
        self._on_words()

    def _on_words(self) -> None:
        words = _words(self._current_transcript())
        fi = self._false_interruption
        if fi is not None and words >= max(1, self._activity.options.min_interruption_words):
            # the user really is talking: the interruption stands
            self._false_interruption = None
            if fi.timer is not None:
                fi.timer.cancel()
            if not fi.speech.done():
                fi.speech._cancel()
            return
        if self._activity.vad is None or self._activity.options.min_interruption_words > 0:
            self._interrupt_by_voice()

    def on_metrics(self, metrics: STTMetrics | VADMetrics) -> None:
        self._session._emit_metrics(metrics)

    def on_error(self, source: str, message: str, exc: BaseException, recoverable: bool) -> None:
        self._session._report_error(source, message, exc, recoverable=recoverable)

    # --- interruptions ----------------------------------------------------------------------
    def _interrupt_by_voice(self) -> None:
        activity = self._activity
        speech = activity.current_speech
        if speech is None or speech.done() or speech.interrupted or not speech.allow_interruptions:
            return
        fi = self._false_interruption
        if fi is not None and fi.speech is speech:
            return  # already paused for this voice
        min_words = activity.options.min_interruption_words
        if min_words > 0 and _words(self._current_transcript()) < min_words:
            return
        timeout = activity.options.false_interruption_timeout
        out = activity.audio_output()
        has_words = _words(self._current_transcript()) >= max(1, min_words)
        may_resume = (
            timeout is not None and not has_words and activity.options.resume_false_interruption
        )
        state = self._session.agent_state
        if may_resume and state == "speaking" and out is not None and out.can_pause:
            logger.debug("user voice: pausing %s until words are heard", speech.id)
            out.pause()
            self._stop_until_words(_FalseInterruption(speech, paused_output=out))
        elif may_resume and state == "thinking":
            # nothing of it was heard yet: hold it back (on any output) until words are heard
            logger.debug("user voice: holding %s until words are heard", speech.id)
            speech._hold()
            if self._postponed is speech:
                self._postponed = None  # released by the false-interruption logic now
            self._stop_until_words(_FalseInterruption(speech, paused_output=None, held=True))
        else:
            logger.debug("user voice: interrupting %s", speech.id)
            speech._cancel()
            if timeout is not None and not has_words:
                self._set_false_interruption(_FalseInterruption(speech, paused_output=None))
        fi = self._false_interruption
        if (
            fi is not None
            and fi.speech is speech
            and fi.timer is None
            and self._recognition is not None
            and not self._recognition.user_speaking
        ):
            self._start_false_interruption_timer(fi)

    def _stop_until_words(self, fi: _FalseInterruption) -> None:
        self._set_false_interruption(fi)
        fi.speech.add_done_callback(lambda _h: self._release_pause(fi))
        self._session._update_agent_state("listening")

    def _set_false_interruption(self, fi: _FalseInterruption) -> None:
        old = self._false_interruption
        if old is not None:
            if old.timer is not None:
                old.timer.cancel()
            if not old.speech.done():
                old.speech._cancel()
        self._false_interruption = fi

    def _start_false_interruption_timer(self, fi: _FalseInterruption) -> None:
        timeout = self._activity.options.false_interruption_timeout
        if timeout is None:  # (cannot be: only a timeout makes an interruption maybe false)
            return
        fi.timer = self._tasks.create(
            self._false_interruption_timer(fi, timeout), name="TurnTaking.false_interruption"
        )

    async def _false_interruption_timer(self, fi: _FalseInterruption, delay: float) -> None:
        await asyncio.sleep(delay)
        if self._false_interruption is not fi:
            return
        self._false_interruption = None
        resumed = False
        if (fi.paused_output is not None or fi.held) and not fi.speech.done():
            logger.info("false interruption: resuming %s", fi.speech.id)
            state: AgentState = "speaking" if fi.paused_output is not None else "thinking"
            self._release_pause(fi)
            self._session._update_agent_state(state)
            resumed = True
        self._session._emit_event(AgentFalseInterruptionEvent(resumed=resumed))

    def _release_pause(self, fi: _FalseInterruption) -> None:
        """Let the paused or held speech go on (resumed, or it ended: interrupted for good)."""
        out, fi.paused_output = fi.paused_output, None
        if out is not None:
            out.resume()
        if fi.held:
            fi.held = False
            fi.speech._release()
        if self._false_interruption is fi:
            self._false_interruption = None
            if fi.timer is not None:
                fi.timer.cancel()

    # --- end of turn ------------------------------------------------------------------------
    def on_end_of_turn(self, info: EndOfTurnInfo) -> bool:
        activity = self._activity
        speech = activity.current_speech
        if speech is not None and not speech.done() and not speech.interrupted:
            if speech.allow_interruptions:
                min_words = activity.options.min_interruption_words
                if min_words > 0 and _words(info.new_transcript) < min_words:
                    logger.debug(
                        "user turn %r shorter than min_interruption_words: kept for the next turn",
                        info.new_transcript,
                    )
                    return False
                speech._cancel()
            # an uninterruptible speech plays on; the reply is queued after it
        fi, self._false_interruption = self._false_interruption, None
        if fi is not None:
            if fi.timer is not None:
                fi.timer.cancel()
            if not fi.speech.done():
                fi.speech._cancel()
        previous = self._turn_task
        walls = (_wall(info.started_speaking_at), _wall(info.stopped_speaking_at))
        self._turn_task = self._tasks.create(
            self._user_turn_completed(info, previous, walls), name="TurnTaking.user_turn"
        )
        return True

    async def _user_turn_completed(
        self,
        info: EndOfTurnInfo,
        previous: asyncio.Task[None] | None,
        walls: tuple[float | None, float | None],
    ) -> None:
        if previous is not None:
            await asyncio.wait({previous})  # turns are answered in order
        activity = self._activity
        agent = activity.agent
        msg = ChatMessage(role="user", content=[info.new_transcript])
        msg.metrics.started_speaking_at, msg.metrics.stopped_speaking_at = walls
        msg.metrics.end_of_turn_delay = info.end_of_utterance_delay
        msg.metrics.transcription_delay = info.transcription_delay
        turn_ctx = agent._chat_ctx.copy()
        started = now()
        stop = False
        try:
            await agent.on_user_turn_completed(turn_ctx, msg)
        except StopResponse:
            stop = True
        except Exception as e:
            logger.exception("%s.on_user_turn_completed raised", agent.label)
            self._session._report_error(
                "agent", f"{agent.label}.on_user_turn_completed failed: {e}", e
            )
        hook_delay = now() - started
        msg.metrics.on_user_turn_completed_delay = hook_delay
        if activity.draining or not self._session.running:
            # too late to answer; keep what the user said
            activity.record_user_message(msg)
            self.discard_preemptive()
            return
        if self._turn_task is not asyncio.current_task():
            # the user went on talking while the hook ran: the newer turn answers both
            logger.debug("user turn %r superseded by a newer one", msg.text_content)
            activity.record_user_message(msg)
            self.discard_preemptive()
            return
        self._session._handoff_timing = None  # (a newer turn: an older one is answered)
        timing = TurnTiming(
            stopped_speaking_at=info.stopped_speaking_at,
            end_of_turn_delay=info.end_of_utterance_delay,
        )
        if info.stopped_speaking_at is not None:
            timing.mark("endpointing", info.stopped_speaking_at + info.end_of_utterance_delay)
        timing.mark("on_user_turn_completed", started + hook_delay)
        pre, self._preemptive = self._preemptive, None
        activity.record_user_message(msg)
        handle: SpeechHandle | None = None
        if stop:
            if pre is not None:
                pre.handle._cancel()
        elif (
            pre is not None
            and not pre.handle.interrupted
            and pre.transcript == msg.text_content
            and pre.ctx_fingerprint == _fingerprint(turn_ctx)
            and pre.tool_ids == tuple(t.name for t in activity.tools)
        ):
            logger.debug("preemptive reply %s used", pre.handle.id)
            handle = pre.handle
            handle._turn_timing = timing
            activity.enqueue_preemptive(handle)
        else:
            if pre is not None:
                logger.debug("preemptive reply %s discarded: the turn changed", pre.handle.id)
                pre.handle._cancel()
            reply_ctx = turn_ctx.copy()
            reply_ctx.append(msg)
            handle = activity.reply_to_user_turn(reply_ctx, timing)
        self._session._emit_metrics(
            EOUMetrics(
                label="end_of_turn",
                end_of_utterance_delay=info.end_of_utterance_delay,
                transcription_delay=info.transcription_delay,
                on_user_turn_completed_delay=hook_delay,
                speech_id=handle.id if handle is not None else None,
                turn_id=timing.turn_id,
                end_of_turn_probability=info.end_of_turn_probability,
                end_of_turn_threshold=info.end_of_turn_threshold,
            )
        )

    # --- preemptive generation --------------------------------------------------------------
    def on_preemptive_generation(self, transcript: str) -> None:
        activity = self._activity
        if activity.draining or not self._session.running or activity.llm is None:
            return
        speech = activity.current_speech
        if speech is not None and not speech.done():
            return  # the reply's context would miss what the agent is saying now
        if self._turn_task is not None and not self._turn_task.done():
            return
        ctx = activity.agent._chat_ctx.copy()
        fingerprint = _fingerprint(ctx)
        tool_ids = tuple(t.name for t in activity.tools)
        pre = self._preemptive
        if (
            pre is not None
            and not pre.handle.interrupted
            and not pre.handle.done()
            and (pre.transcript, pre.ctx_fingerprint, pre.tool_ids)
            == (transcript, fingerprint, tool_ids)
        ):
            return  # already started on these words (a preflight the final confirms)
        self.discard_preemptive()
        ctx.append(ChatMessage(role="user", content=[transcript]))
        handle = activity.start_preemptive_reply(ctx)
        self._preemptive = _Preemptive(handle, transcript, fingerprint, tool_ids)

    def discard_preemptive(self) -> None:
        pre, self._preemptive = self._preemptive, None
        if pre is not None:
            pre.handle._cancel()


def _language(ev: SpeechEvent) -> str:
    return ev.alternatives[0].language if ev.alternatives else ""


def _wall(loop_time: float | None) -> float | None:
    """A recent loop-clock instant as wall-clock time."""
    if loop_time is None:
        return None
    return time.time() - (now() - loop_time)
