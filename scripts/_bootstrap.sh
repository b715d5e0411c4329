# Sourced by scripts/run and scripts/test: creates .venv on first use and (re)installs the project
# whenever pyproject.toml changed since the last install. Needs only python3 (>= 3.11) and pip.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"

"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "voicetui needs Python >= 3.11, found " + sys.version.split()[0])'

if [ ! -x "$VENV/bin/python" ]; then
    echo "voicetui: creating $VENV" >&2
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip >&2
fi

_voicetui_install() {  # $1 = extras, e.g. "dev"
    local extras="$1" stamp="$VENV/.voicetui-$1.stamp" want
    want="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        echo "voicetui: installing dependencies ($extras) into $VENV" >&2
        if ! "$VENV/bin/python" -c "import llama_cpp" 2>/dev/null && [[ ",$extras," == *",local,"* || ",$extras," == *",dev,"* ]]; then
            # (not hung: llama-cpp-python ships as source only and pip prints nothing meanwhile)
            echo "voicetui: the first install compiles llama.cpp (llama-cpp-python): about" \
                "5 minutes in all on 2 cores, once; later installs reuse pip's wheel cache" >&2
        fi
        # llama-cpp-python builds llama.cpp from source: without its llava/mtmd library
        # (multimodal, unused here), 15 % less compiling (docs/benchmarks.md, "First setup")
        CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF}" \
            "$VENV/bin/python" -m pip install --quiet -e "$ROOT[$extras]" >&2
        if [[ ",$extras," == *",dev,"* ]]; then
            # the tests run the Smart Turn model, a file inside the pipecat-ai wheel: the wheel
            # alone, without pipecat's own dependency tree (voicetui imports none of it)
            "$VENV/bin/python" -m pip install --quiet --no-deps "pipecat-ai==1.14.0" >&2
            # the tests host a real LiveKit Agents agent (tests/test_livekit_agents.py): in its
            # own venv, as users run theirs (`voicetui livekit-agent --python`), because
            # livekit-agents pins an older livekit (rtc) than voicetui's
            if [ ! -x "$ROOT/.venv-lk/bin/python" ]; then
                "$PY" -m venv "$ROOT/.venv-lk"
            fi
            "$ROOT/.venv-lk/bin/python" -m pip install --quiet \
                "livekit-agents[openai]==1.8.9" "livekit-plugins-silero==1.8.9" >&2
        fi
        echo "$want" > "$stamp"
    fi
}
