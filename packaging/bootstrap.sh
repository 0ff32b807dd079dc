#!/usr/bin/env bash
# Install Qwen3-TTS Studio from this checkout and launch it, or run the checks and tests.
#
#   bash packaging/bootstrap.sh              install, then open the studio (extra arguments go to it)
#   bash packaging/bootstrap.sh --test       install with the dev tools, then run the import contracts,
#                                            the linter and every test not marked slow (extra arguments
#                                            go to pytest: `-m slow` runs the slow suites instead, as CI
#                                            does after this; `-m ""` runs everything)
#
# Idempotent: system packages are installed only when missing (and only as root; otherwise the
# command to run is printed), and pip runs only when pyproject.toml or this script changed since the
# last successful install, so a second run starts in seconds.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

mode=run
if [[ "${1:-}" == "--test" ]]; then
    mode=test
    shift
fi

say() { printf '[bootstrap] %s\n' "$*" >&2; }

# --- system packages (Debian/Ubuntu) -----------------------------------------------------------------
# PortAudio for sounddevice, libsndfile for soundfile, and what Qt's xcb platform plugin loads.
runtime_packages=(
    libportaudio2 libasound2 libsndfile1
    libegl1 libgl1 libfontconfig1 libglib2.0-0 libdbus-1-3
    libxkbcommon0 libxkbcommon-x11-0 libx11-xcb1
    libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0
    libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1
    libwayland-client0 libwayland-cursor0 libwayland-egl1
)
# The tests also run the real window under Xvfb, and build and unpack the desktop packages
# (tests/packaging: zstd for the tarball, desktop-file-validate for the menu entry).
test_packages=(xvfb xauth x11-utils zstd desktop-file-utils)

wanted=("${runtime_packages[@]}")
[[ $mode == test ]] && wanted+=("${test_packages[@]}")

if command -v dpkg-query >/dev/null 2>&1; then
    missing=()
    for pkg in "${wanted[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        if [[ $(id -u) == 0 ]]; then
            say "installing system packages: ${missing[*]}"
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -qq
            apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        else
            say "missing system packages: ${missing[*]}"
            say "install them with: sudo apt-get install ${missing[*]}"
        fi
    fi
else
    say "not a Debian-based system: install PortAudio, libsndfile and Qt's xcb libraries with your package manager"
fi

# --- Python environment -------------------------------------------------------------------------------
python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    say "Python 3.10 or newer is needed as '$python' (set PYTHON=/path/to/python3.x to choose one)"
    exit 2
fi

if [[ ! -x .venv/bin/python ]]; then
    say "creating .venv"
    if ! "$python" -m venv .venv 2>/dev/null; then
        rm -rf .venv
        if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
            apt-get install -y -qq python3-venv >/dev/null
            "$python" -m venv .venv
        else
            say "'$python -m venv' failed: install your distribution's python3-venv package"
            exit 2
        fi
    fi
fi

extras=""
[[ $mode == test ]] && extras="[dev]"
stamp_file=.venv/.bootstrap-stamp
stamp="$extras $(cat pyproject.toml "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1)"
# A test install satisfies a plain run too; a run-only install does not satisfy the tests.
if [[ -f $stamp_file ]] && { [[ $(cat "$stamp_file") == "$stamp" ]] ||
    { [[ $mode == run ]] && [[ $(cat "$stamp_file") == "[dev] ${stamp#* }" ]]; }; }; then
    :
else
    say "installing the studio and its dependencies into .venv (the first time downloads torch and Qt)"
    .venv/bin/python -m pip install --quiet --editable ".${extras}"
    echo "$stamp" >"$stamp_file"
fi

# --- go -------------------------------------------------------------------------------------------------
if [[ $mode == run ]]; then
    exec .venv/bin/qwen-tts-studio "$@"
fi

export QT_QPA_PLATFORM=${QT_QPA_PLATFORM:-offscreen}
say "import contracts"
.venv/bin/lint-imports --no-cache
say "lint"
.venv/bin/ruff check .
say "tests"
# The slow suites (a packaged build, full-size weights, killed training runs...) take as long as all the
# others together; CI runs them as a second step (.ci/run). A later -m on the command line wins.
exec .venv/bin/python -m pytest -m "not slow" "$@"
