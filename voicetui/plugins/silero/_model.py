"""The Silero v6 ONNX model that ships inside faster-whisper, run with onnxruntime.

The model takes rows of 64 context samples + a 512-sample window at 16 kHz; the rows of one call
are consecutive in time (the recurrent state ``h``/``c`` carries from row to row), so a batch of
windows costs one call."""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from voicetui.agents.exceptions import VADError

SAMPLE_RATE = 16000
WINDOW = 512
CONTEXT = 64
_STATE_SHAPE = (1, 1, 128)
_MODEL_FILE = "silero_vad_v6.onnx"
_INSTALL_HINT = "pip install 'voicetui[local]'"

_sessions: dict[Path, Any] = {}
_sessions_lock = threading.Lock()


def default_model_path() -> Path:
    """``faster_whisper/assets/silero_vad_v6.onnx``, found without importing faster_whisper."""
    spec = importlib.util.find_spec("faster_whisper")
    if spec is None or not spec.submodule_search_locations:
        raise VADError(
            f"Silero VAD needs faster-whisper (it ships the model): {_INSTALL_HINT}",
            recoverable=False,
        )
    for location in spec.submodule_search_locations:
        path = Path(location) / "assets" / _MODEL_FILE
        if path.is_file():
            return path
    raise VADError(
        f"{_MODEL_FILE} is missing from the installed faster-whisper; reinstall it: "
        f"{_INSTALL_HINT}",
        recoverable=False,
    )


def load_session(path: Path) -> Any:
    """The onnxruntime session for ``path``, loaded once per process and shared (``run`` is
    thread-safe)."""
    with _sessions_lock:
        session = _sessions.get(path)
        if session is not None:
            return session
        try:
            import onnxruntime  # type: ignore[import-untyped]
        except ImportError as e:
            raise VADError(
                f"Silero VAD needs onnxruntime: {_INSTALL_HINT}", recoverable=False
            ) from e
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            session = onnxruntime.InferenceSession(
                str(path), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as e:
            raise VADError(f"cannot load the Silero model {path}: {e}", recoverable=False) from e
        _check_signature(session, path)
        _sessions[path] = session
        return session


def _check_signature(session: Any, path: Path) -> None:
    inputs = {i.name: i.shape for i in session.get_inputs()}
    outputs = [o.name for o in session.get_outputs()]
    if (
        set(inputs) != {"input", "h", "c"}
        or len(outputs) != 3
        or inputs["input"][-1] != (WINDOW + CONTEXT)
    ):
        raise VADError(
            f"{path} is not the Silero v6 model expected (inputs {inputs}, outputs {outputs})",
            recoverable=False,
        )


@dataclass(frozen=True)
class SileroState:
    """What carries from one batch to the next: the LSTM state and the last 64 samples."""

    h: np.ndarray
    c: np.ndarray
    context: np.ndarray

    @classmethod
    def initial(cls) -> SileroState:
        zeros = np.zeros(_STATE_SHAPE, dtype=np.float32)
        return cls(zeros, zeros.copy(), np.zeros(CONTEXT, dtype=np.float32))


def infer(session: Any, windows: np.ndarray, state: SileroState) -> tuple[np.ndarray, SileroState]:
    """Speech probabilities of consecutive 512-sample windows (shape (n, 512), float32 in
    [-1, 1]) and the state after them. Pure: ``state`` is not modified."""
    if windows.ndim != 2 or windows.shape[1] != WINDOW or not len(windows):
        raise ValueError(f"windows must have shape (n>0, {WINDOW})")
    windows = windows.astype(np.float32, copy=False)
    contexts = np.concatenate([state.context[None, :], windows[:-1, -CONTEXT:]], axis=0)
    rows = np.ascontiguousarray(np.concatenate([contexts, windows], axis=1))
    probs, h, c = session.run(None, {"input": rows, "h": state.h, "c": state.c})
    return (
        np.asarray(probs, dtype=np.float32).reshape(-1),
        SileroState(h, c, windows[-1, -CONTEXT:].copy()),
    )
