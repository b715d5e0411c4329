#!/usr/bin/env bash
# The system packages voicetui's tests and embedded models use: espeak-ng (test speech, last-resort
# TTS), PortAudio (local audio), PulseAudio (virtual audio devices for tests) and sox.
# Installs what is missing when run as root with apt-get; otherwise prints what to install.
set -euo pipefail
PKGS=(espeak-ng libportaudio2 pulseaudio pulseaudio-utils libasound2-plugins sox tmux)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "voicetui: installing system packages: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2 || true
    apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
else
    echo "voicetui: missing system packages: ${missing[*]} (install them with your package manager)" >&2
    exit 1
fi
