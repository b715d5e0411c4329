#!/usr/bin/env bash
# Virtual audio devices for tests and CI: a private PulseAudio daemon with two null sinks
#   vspeaker            what the app plays (record it from vspeaker.monitor)
#   vmic_sink -> vmic   play into vmic_sink (paplay --device=vmic_sink), the app records vmic
# PortAudio (sounddevice) reaches them through ALSA's "pulse"/"default" devices.
#
#   scripts/virtual_audio.sh start          start (idempotent), print the env to export
#   scripts/virtual_audio.sh env            print the env of a running instance
#   scripts/virtual_audio.sh status         exit 0 when running
#   scripts/virtual_audio.sh stop           stop everything this script started (by PID)
#   scripts/virtual_audio.sh unplug         remove the devices (streams on them fail: tests)
#   scripts/virtual_audio.sh plug           put them back (idempotent)
#   scripts/virtual_audio.sh run -- CMD...  start, run CMD with the env set, stop if we started it
#
# VIRTUAL_AUDIO_DIR chooses the runtime dir (default /tmp/xdg-runtime); several instances with
# different dirs are independent (the test fixture uses a private one per pytest run).
set -euo pipefail

DIR="${VIRTUAL_AUDIO_DIR:-/tmp/xdg-runtime}"
STATE="$DIR/voicetui-virtual-audio"
WARMUP="${VIRTUAL_AUDIO_WARMUP:-2.5}"

_env() {
    echo "export XDG_RUNTIME_DIR=$DIR"
    echo "export PULSE_SERVER=unix:$DIR/pulse/native"
}

_pa() {  # run a pulse client against our daemon
    XDG_RUNTIME_DIR="$DIR" PULSE_SERVER="unix:$DIR/pulse/native" "$@"
}

_gone() {  # $1 = pid: exited (or a zombie nobody reaped)
    ! kill -0 "$1" 2>/dev/null || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]
}

_alive() {  # $1 = pid file
    [ -f "$1" ] && ! _gone "$(cat "$1")"
}

_running() {
    _alive "$STATE/pulseaudio.pid" && _pa pactl info >/dev/null 2>&1
}

_keepalive() {  # $1 = sink: an idle null-sink monitor delivers nothing, so keep it playing
    local pidf="$STATE/pacat-$1.pid"
    _alive "$pidf" && return 0
    _pa pacat --playback --device="$1" --latency-msec=20 --format=s16le --rate=48000 \
        --channels=1 /dev/zero </dev/null >/dev/null 2>&1 &
    echo $! >"$pidf"
}

start() {
    for tool in pulseaudio pactl pacat; do
        command -v "$tool" >/dev/null || {
            echo "virtual_audio: $tool is missing (scripts/system_deps.sh installs it)" >&2
            exit 1
        }
    done
    mkdir -p "$DIR"
    chmod 700 "$DIR"
    mkdir -p "$STATE"
    if ! _running; then
        rm -f "$STATE"/*.pid
        XDG_RUNTIME_DIR="$DIR" pulseaudio -D -n --exit-idle-time=-1 --system=false \
            --use-pid-file=yes --high-priority=yes --realtime=yes \
            --load=module-native-protocol-unix \
            >"$STATE/pulseaudio.log" 2>&1
        for _ in $(seq 50); do
            [ -f "$DIR/pulse/pid" ] && _pa pactl info >/dev/null 2>&1 && break
            sleep 0.1
        done
        cp "$DIR/pulse/pid" "$STATE/pulseaudio.pid"
        _running || {
            echo "virtual_audio: pulseaudio did not start (log: $STATE/pulseaudio.log)" >&2
            exit 1
        }
        plug
        sleep "$WARMUP"
    else
        plug
    fi
    _env
}

_has() {  # $1 = sinks|sources, $2 = name
    _pa pactl list short "$1" | cut -f2 | grep -qx "$2"
}

plug() {
    _has sinks vspeaker || _pa pactl load-module module-null-sink sink_name=vspeaker rate=48000 >/dev/null
    _has sinks vmic_sink || _pa pactl load-module module-null-sink sink_name=vmic_sink rate=48000 >/dev/null
    _has sources vmic ||
        _pa pactl load-module module-virtual-source source_name=vmic master=vmic_sink.monitor >/dev/null
    _pa pactl set-default-sink vspeaker
    _pa pactl set-default-source vmic
    _keepalive vspeaker
    _keepalive vmic_sink
}

unplug() {
    local f
    for f in "$STATE"/pacat-*.pid; do
        [ -f "$f" ] || continue
        kill "$(cat "$f")" 2>/dev/null || true
        rm -f "$f"
    done
    _pa pactl list short modules | awk '$2 ~ /module-(null-sink|virtual-source|loopback)/ {print $1}' |
        sort -rn | while read -r id; do _pa pactl unload-module "$id" || true; done
}

stop() {
    local f pid
    for f in "$STATE"/pacat-*.pid "$STATE/pulseaudio.pid"; do
        [ -f "$f" ] || continue
        pid="$(cat "$f")"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 30); do
            _gone "$pid" && break
            sleep 0.1
        done
        rm -f "$f"
    done
}

case "${1:-}" in
start) start ;;
stop) stop ;;
plug) _running && plug ;;
unplug) _running && unplug ;;
env) _running && _env ;;
status) _running ;;
run)
    shift
    [ "${1:-}" = "--" ] && shift
    [ $# -gt 0 ] || { echo "usage: $0 run -- COMMAND..." >&2; exit 2; }
    started=0
    _running || started=1
    start >/dev/null
    rc=0
    XDG_RUNTIME_DIR="$DIR" PULSE_SERVER="unix:$DIR/pulse/native" "$@" || rc=$?
    [ "$started" = 1 ] && stop
    exit "$rc"
    ;;
*)
    echo "usage: $0 start|stop|env|status|run -- COMMAND..." >&2
    exit 2
    ;;
esac
