"""The ``voicetui`` command (also ``python -m voicetui``).

    voicetui                      the TUI, local audio, the default agent
    voicetui --headless [--json]  the same session without the TUI (scripts, CI)
    voicetui config               the effective settings (secrets masked) and their sources
    voicetui show DIR             a recording in the TUI, read-only (--text: printed)
    voicetui replay DIR           a recording's user turns against the current agent, diffed
    voicetui eval FILE.yaml...    scenarios run against an agent, every turn scored

Exit codes: 0 fine, 1 a runtime failure, 2 a usage or setup problem (bad flags, invalid
config, an agent that does not load, missing model requirements), 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from . import __version__
from .config import DISABLED_BY_ZERO, Mode, TurnSettings

USAGE_ERROR = 2

_MODEL_FLAGS = ("stt", "llm", "tts", "vad")


def _choices(name: str) -> list[str]:
    from .plugins import selection

    alias = {
        "stt": selection.STTChoice,
        "llm": selection.LLMChoice,
        "tts": selection.TTSChoice,
        "vad": selection.VADChoice,
        "turn_detector": selection.TurnDetectorChoice,
    }[name]
    return list(typing.get_args(alias))


def _settings_flags(parser: argparse.ArgumentParser) -> None:
    """Flags that set settings. Absent flags are absent from the namespace (SUPPRESS), so that
    the config file and the environment show through and subcommands can repeat them."""
    S = argparse.SUPPRESS
    g = parser.add_argument_group("session")
    g.add_argument(
        "--mode",
        choices=typing.get_args(Mode),
        default=S,
        help="where the conversation happens (default: local; wav with --input-wav)",
    )
    g.add_argument(
        "--agent",
        metavar="PATH.py[:NAME]",
        default=S,
        help="your agent: an Agent subclass or a function returning one "
        "(default: the first Agent subclass in the file)",
    )
    g.add_argument(
        "--config",
        metavar="FILE",
        default=S,
        help="the config file (default: config.toml in the user config dir)",
    )
    g.add_argument("--theme", default=S, help="TUI theme name (dark, light, or your own)")
    g.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default=S)
    a = parser.add_argument_group("audio")
    a.add_argument(
        "--input-device",
        metavar="DEVICE",
        default=S,
        help="microphone: index or name substring (see --list-devices)",
    )
    a.add_argument(
        "--output-device", metavar="DEVICE", default=S, help="speaker: index or name substring"
    )
    a.add_argument(
        "--input-wav",
        metavar="FILE",
        default=S,
        help="use a WAV file as the microphone (implies --mode wav)",
    )
    a.add_argument(
        "--output-wav", metavar="FILE", default=S, help="write what the agent says to a WAV file"
    )
    a.add_argument(
        "--record", metavar="DIR", dest="record_dir", default=S, help="record the session into DIR"
    )
    a.add_argument(
        "--no-echo-cancellation",
        dest="echo_cancellation",
        action="store_false",
        default=S,
        help="turn local echo cancellation off",
    )
    m = parser.add_argument_group("models")
    for kind in _MODEL_FLAGS:
        m.add_argument(
            f"--{kind}",
            choices=_choices(kind),
            default=S,
            help=f"{kind.upper()} provider (default: auto)",
        )
    m.add_argument(
        "--turn-detector",
        choices=_choices("turn_detector"),
        default=S,
        help="an end-of-turn model that decides at the VAD's pauses whether the user is done "
        "(smart_turn: Smart Turn v3, the voicetui[smart-turn] extra; default: none)",
    )
    m.add_argument("--llm-model", metavar="NAME", default=S)
    m.add_argument("--stt-model", metavar="NAME", default=S)
    m.add_argument("--tts-voice", metavar="NAME", default=S)
    m.add_argument(
        "--openai-base-url",
        metavar="URL",
        default=S,
        help="an OpenAI-compatible server (default: $OPENAI_BASE_URL)",
    )
    _turn_flags(parser.add_argument_group("turn-taking"))
    r = parser.add_argument_group("LiveKit room")
    r.add_argument("--url", default=S, help="LiveKit server URL (default: $LIVEKIT_URL)")
    r.add_argument("--room", default=S, help="room name (default: voicetui)")
    r.add_argument("--identity", default=S, help="the agent's identity in the room")
    r.add_argument("--token", default=S, help="a join token (default: minted from the API key)")


def _turn_flags(group: argparse._ArgumentGroup) -> None:
    """One flag per turn option, generated from its field: type, choices and help (the field's
    docstring). Booleans get a ``--no-`` form too."""
    for name, info in TurnSettings.model_fields.items():
        kind = _without_none(info.annotation)
        help_text = " ".join((info.description or "").split()).replace("%", "%%")
        if name in DISABLED_BY_ZERO:
            help_text += " 0 disables it."
        flag = f"--{name.replace('_', '-')}"
        if kind is bool:
            group.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                help=help_text,
            )  # fmt: skip
        elif typing.get_origin(kind) is typing.Literal:
            group.add_argument(
                flag, choices=typing.get_args(kind), default=argparse.SUPPRESS, help=help_text
            )
        else:
            metavar = "SECONDS" if kind is float else "N"  # (every float option is a duration)
            group.add_argument(
                flag, type=kind, metavar=metavar, default=argparse.SUPPRESS, help=help_text
            )


def _without_none(annotation: Any) -> Any:
    """``X | None`` → ``X``; anything else as is."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return annotation


def _flag_keys() -> dict[str, str]:
    """argparse's ``dest`` → the dotted settings key it sets."""
    return {**_FLAG_KEYS, **{name: f"turn.{name}" for name in TurnSettings.model_fields}}


_FLAG_KEYS: dict[str, str] = {  # (the turn options' flags are generated: _turn_flags)
    "mode": "mode",
    "agent": "agent",
    "theme": "theme",
    "log_level": "log_level",
    "input_device": "input_device",
    "output_device": "output_device",
    "input_wav": "input_wav",
    "output_wav": "output_wav",
    "record_dir": "record_dir",
    "echo_cancellation": "echo_cancellation",
    "stt": "models.stt",
    "llm": "models.llm",
    "tts": "models.tts",
    "vad": "models.vad",
    "turn_detector": "models.turn_detector",
    "llm_model": "models.llm_model",
    "stt_model": "models.stt_model",
    "tts_voice": "models.tts_voice",
    "openai_base_url": "models.openai_base_url",
    "url": "room.url",
    "room": "room.name",
    "identity": "room.identity",
    "token": "room.token",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voicetui",
        description="Talk to, debug and measure voice agents from your terminal.",
        epilog="Settings come from the config file, then VOICETUI_* (and OPENAI_*, LIVEKIT_*) "
        "environment variables, then these flags. `voicetui config` shows them.",
    )
    parser.add_argument("--version", action="version", version=f"voicetui {__version__}")
    parser.add_argument(
        "--list-devices", action="store_true", help="list the audio devices and exit"
    )
    parser.add_argument(
        "--headless",
        action="store_true",
        help="no TUI: print the conversation (exits after --input-wav's reply)",
    )
    parser.add_argument(
        "--json", action="store_true", help="with --headless: one JSON object per event"
    )
    _settings_flags(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    config = sub.add_parser("config", help="print the effective settings (secrets masked)")
    config.add_argument("--path", action="store_true", help="print the config file's path only")
    _settings_flags(config)
    recording = sub.add_parser("recording", help="recordings: repair one a crash left behind")
    rec_sub = recording.add_subparsers(dest="recording_command", metavar="ACTION", required=True)
    repair = rec_sub.add_parser("repair", help="fix WAV headers a killed writer left wrong")
    repair.add_argument("dir", help="the recording's folder")
    show = sub.add_parser(
        "show",
        help="open a recording in the TUI, read-only: conversation, tools, latency "
        "(--text prints it)",
    )
    show.add_argument("dir", help="the recording's folder")
    show.add_argument(
        "--text",
        action="store_true",
        help="print it instead: turns, tool calls, latency (also when stdout is not a terminal)",
    )
    show.add_argument(
        "--at",
        type=float,
        metavar="SECONDS",
        help="show the session as it was SECONDS into the recording",
    )
    show.add_argument(
        "--speed",
        type=float,
        metavar="FACTOR",
        help="play the events at their recorded pace, FACTOR times faster (default: all at once)",
    )
    show.add_argument("--theme", default=argparse.SUPPRESS, help="TUI theme name")
    replay = sub.add_parser(
        "replay",
        help="feed a recording's user audio to the current agent and models, record the new "
        "run, and print a side-by-side diff (a regression test for an agent)",
    )
    replay.add_argument("dir", help="the recording's folder")
    replay.add_argument("--realtime", action="store_true", help="pace the audio in real time")
    replay.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="OPTION=VALUE",
        help="what if: replay with this turn option changed (any of the turn-taking flags' "
        "options, e.g. min_endpointing_delay=0.3, turn_detection=smart_turn; repeatable); "
        "paced in real time, and reported turn by turn: where each turn ended, cut-offs, "
        "the latency difference",
    )
    _settings_flags(replay)
    from .evals.command import add_eval_parser

    add_eval_parser(sub)
    return parser


def flags_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The settings the flags set, by dotted key."""
    given = vars(args)
    flags = {key: given[name] for name, key in _flag_keys().items() if name in given}
    if "input_wav" in flags and "mode" not in flags:
        flags["mode"] = "wav"
    for assignment in given.get("set") or []:
        flags.update(whatif_setting(assignment))
    return flags


def whatif_setting(assignment: str) -> dict[str, Any]:
    """``replay --set OPTION=VALUE`` as settings by dotted key (a turn option; the end-of-turn
    model as ``turn_detection=smart_turn`` or ``turn_detector=...``). Raises ConfigError."""
    from .agents.voice.turn_options import TurnOptions
    from .config import ConfigError

    name, sep, value = assignment.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or not name:
        raise ConfigError(f"--set {assignment!r}: expected OPTION=VALUE")
    value = value.strip()
    if name == "turn_detector" or (name == "turn_detection" and value == "smart_turn"):
        detector = "smart_turn" if name == "turn_detection" else value
        return {"models.turn_detector": detector, "turn.turn_detection": "vad"}
    if name not in TurnOptions.model_fields:
        known = ", ".join(sorted(TurnOptions.model_fields))
        raise ConfigError(f"--set {name}: not a turn option (one of: {known}, turn_detector)")
    return {f"turn.{name}": None if value.lower() in ("none", "null") else value}


def _fail(message: str, err: TextIO) -> int:
    err.write(f"voicetui: {message}\n")
    return USAGE_ERROR


def _list_devices(out: TextIO, err: TextIO) -> int:
    from .io.local import AudioDeviceError, format_devices

    try:
        out.write(format_devices() + "\n")
    except AudioDeviceError as e:
        err.write(f"voicetui: {e}\n")
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    out, err = sys.stdout, sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, usage errors
        return int(e.code) if isinstance(e.code, int) else (0 if e.code is None else 2)

    from .config import ConfigError, load_settings

    try:
        named = getattr(args, "config", None)
        settings = load_settings(
            flags_from_args(args), config_path=named, config_required=named is not None
        )
    except ConfigError as e:
        return _fail(str(e), err)

    if args.command in ("recording", "show", "replay"):
        return _recording_command(args, settings, out, err)
    if args.command == "eval":
        from .evals.command import eval_main

        return eval_main(args, settings, out, err)
    if args.command == "config":
        if args.path:
            from .config import default_config_path

            out.write(f"{settings.config_path or default_config_path()}\n")
        else:
            out.write(settings.describe() + "\n")
        return 0
    if args.list_devices:
        return _list_devices(out, err)
    if args.json and not args.headless:
        return _fail("--json needs --headless", err)

    if settings.mode == "wav" and settings.input_wav:  # before any model loads
        from .io.wav import check_wav

        try:
            check_wav(Path(settings.input_wav).expanduser())
        except FileNotFoundError:
            return _fail(f"--input-wav: {settings.input_wav}: no such file", err)
        except (OSError, ValueError) as e:
            return _fail(f"--input-wav: {e}", err)

    from .agent_loader import AgentLoadError, load_agent

    agent_factory = None
    if settings.agent:
        try:
            agent_factory = load_agent(settings.agent)
        except AgentLoadError as e:
            return _fail(f"--agent: {e}", err)

    from .plugins.selection import check_requirements, resolve

    problems = check_requirements(resolve(settings.models))
    if problems:
        for problem in problems:
            err.write(f"voicetui: {problem}\n")
        err.write(
            "voicetui: choose other providers with --stt/--llm/--tts/--vad (see --help), "
            "or set OPENAI_API_KEY for hosted models\n"
        )
        return USAGE_ERROR

    if args.headless:
        return _run_headless(settings, agent_factory, json_output=args.json)
    return _run_tui(settings, agent_factory, err)


def _run_headless(settings: Any, agent_factory: Any, *, json_output: bool) -> int:
    from .headless import run_headless
    from .runtime.controller import SessionController
    from .runtime.log_capture import LogCapture, SanitizingFormatter, level_number

    capture: LogCapture | None = None
    if json_output:  # stdout is for JSON only: log records become events
        capture = LogCapture(settings.log_level)
        capture.install()
    try:
        controller = SessionController(settings, agent=agent_factory, log_capture=capture)
        if capture is None:  # log lines on stderr, sanitised like the events
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(
                SanitizingFormatter(
                    controller.sanitizer.text, "voicetui: %(levelname)s %(name)s: %(message)s"
                )
            )
            logging.basicConfig(
                level=max(level_number(settings.log_level), logging.WARNING), handlers=[handler]
            )
        typed = sys.stdin if settings.mode != "wav" else None
        return run_headless(controller, json_output=json_output, stdin=typed)
    finally:
        if capture is not None:
            capture.uninstall()


def _run_tui(settings: Any, agent_factory: Any, err: TextIO) -> int:
    try:
        from .tui.app import run_app  # type: ignore[import-not-found,unused-ignore]
    except ImportError as e:
        err.write(
            f"voicetui: the terminal UI is not available in this build ({e}); "
            "use --headless to run without it\n"
        )
        return 1
    from .runtime.controller import SessionController
    from .runtime.log_capture import LogCapture

    capture = LogCapture(settings.log_level)
    capture.install()  # from here on nothing is logged to the raw terminal
    controller = SessionController(settings, agent=agent_factory, log_capture=capture)
    from platformdirs import user_log_dir

    from .runtime.native_output import native_output_to
    from .signals import exit_code, signals_as_interrupt

    code = 0
    try:
        # SIGTERM, SIGHUP: the app quits (on_terminate), or before and after it Terminated
        with signals_as_interrupt():
            try:
                # C libraries (ALSA, llama.cpp) write straight to the terminal: into a log file
                with native_output_to(Path(user_log_dir("voicetui")) / "native.log"):
                    code = run_app(controller, theme=settings.theme)
            except KeyboardInterrupt as e:
                code = exit_code(e)
            finally:
                try:
                    controller.stop().result(timeout=20)
                    controller.join(timeout=5)
                except KeyboardInterrupt as e:
                    code = exit_code(e)
                except Exception as e:  # the app is gone already: say it on the terminal
                    err.write(
                        f"voicetui: stopping the session: {controller.sanitizer.text(str(e))}\n"
                    )
    finally:
        capture.uninstall()
    return code


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or odd stream
        return False


def _show_in_tui(args: argparse.Namespace, settings: Any, err: TextIO) -> int:
    """``voicetui show DIR`` on a terminal: the recording in the TUI, read-only."""
    from .runtime.recording_view import RecordingRuntime

    speed, at = getattr(args, "speed", None), getattr(args, "at", None)
    if speed is not None and speed <= 0:
        return _fail("--speed must be above 0", err)
    try:
        view = RecordingRuntime(args.dir, until=at, speed=speed)
    except OSError as e:
        return _fail(f"cannot read the recording: {e}", err)
    try:
        from .tui.app import run_app  # type: ignore[import-not-found,unused-ignore]
    except ImportError as e:
        return _fail(f"the terminal UI is not available in this build ({e}); use --text", err)
    theme = getattr(settings, "theme", None) if settings is not None else None
    try:
        return run_app(view, theme=theme)
    except KeyboardInterrupt:
        return 130
    finally:
        view.stop()
        view.join(timeout=5)


def _recording_command(args: argparse.Namespace, settings: Any, out: TextIO, err: TextIO) -> int:
    if args.command == "recording":
        from .recording.repair import repair_main

        return repair_main(args.dir, out=out)
    from .recording.load import load_recording

    if args.command == "show":
        text = getattr(args, "text", False) or not _is_terminal(out)
        if not text:
            return _show_in_tui(args, settings, err)
        from .recording.diff import format_recording

        try:
            rec = load_recording(args.dir)
        except (OSError, ValueError) as e:
            return _fail(f"cannot read the recording: {e}", err)
        at = getattr(args, "at", None)
        if at is not None:
            from .recording.load import turns_of

            rec.events = [e for e in rec.events if e.t <= at]
            rec.turns = turns_of(rec.events)
        out.write(format_recording(rec) + "\n")
        return 0
    # replay: the current agent and models, as the app would build them
    from .agent_loader import load_agent, make_agent
    from .agents import AgentSession
    from .plugins.selection import build_models, check_requirements, resolve
    from .recording.replay import replay_main

    resolved = resolve(settings.models)
    problems = check_requirements(resolved)
    if problems:
        for problem in problems:
            err.write(f"voicetui: {problem}\n")
        return 2
    agent_source = load_agent(settings.agent) if settings.agent else None

    async def session_factory() -> Any:
        models = build_models(resolved)
        session: AgentSession[Any] = AgentSession(
            **models.session_kwargs(settings.turn.session_kwargs())
        )
        return session, await make_agent(agent_source)

    if args.set:  # endpointing is timed: the audio must arrive as it was spoken
        err.write("voicetui: what-if replay, paced in real time\n")
    return replay_main(
        args.dir,
        session_factory=session_factory,
        realtime=args.realtime or bool(args.set),
        whatif=list(args.set) if args.set else None,
        out_root=settings.record_dir,
        out=out,
    )
