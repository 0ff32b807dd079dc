#!/usr/bin/env bash
# Build the Qwen3-TTS Studio desktop bundle from a clean venv.
#
#   bash packaging/build.sh [--torch cpu|cuda] [--no-deb] [--no-tar] [--reuse-venv]
#
# Writes, for version V (from studio/__init__.py) and variant T (cpu is the default):
#   dist/T/qwen-tts-studio/                       the one-folder bundle (run ./qwen-tts-studio)
#   dist/qwen-tts-studio-V-linux-x86_64-T.tar.zst  that folder, compressed
#   dist/qwen-tts-studio[-cuda]_V_amd64.deb        installs to /opt/qwen-tts-studio, launcher in /usr/bin
#
# The venv (build/venv-T) is made anew for every build so the bundle holds what a fresh install of the
# studio pulls in and nothing a developer happened to have. --reuse-venv skips that while iterating
# on the spec. The torch build comes from TORCH_REQUIREMENT (a pip requirement or a wheel file):
# the CPU variant needs a CPU-only wheel (PyTorch publishes them on its own CPU wheel index, which pip
# reaches with PIP_EXTRA_INDEX_URL); the script checks that the installed torch is the variant asked for.
# Windows bundles are built with packaging/windows/build.ps1 and Inno Setup, on Windows.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

variant=cpu
make_deb=1
make_tar=1
reuse_venv=0
while [[ $# -gt 0 ]]; do
    case $1 in
    --torch)
        if [[ $# -lt 2 ]]; then
            echo "build.sh: --torch needs a value: cpu or cuda" >&2
            exit 2
        fi
        variant=$2
        shift 2
        ;;
    --torch=*)
        variant=${1#--torch=}
        shift
        ;;
    --no-deb) make_deb=0; shift ;;
    --no-tar) make_tar=0; shift ;;
    --reuse-venv) reuse_venv=1; shift ;;
    -h | --help)
        sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "build.sh: unknown option $1 (see --help)" >&2
        exit 2
        ;;
    esac
done
case $variant in
cpu) default_torch="torch==2.13.0" ;;
cuda) default_torch="torch==2.14.1" ;;
*)
    echo "build.sh: --torch takes cpu or cuda, not '${variant}'" >&2
    exit 2
    ;;
esac
torch_requirement=${TORCH_REQUIREMENT:-$default_torch}
PYTHON=${PYTHON:-python3}

say() { printf '\n== %s\n' "$*" >&2; }
started=$(date +%s)

if [[ $(uname -s) != Linux ]]; then
    echo "build.sh: builds Linux bundles; on Windows use packaging/windows/build.ps1" >&2
    exit 2
fi
for tool in "$PYTHON" tar zstd dpkg-deb; do
    if ! command -v "$tool" >/dev/null; then
        echo "build.sh: '$tool' is needed (apt-get install python3-venv zstd dpkg)" >&2
        exit 2
    fi
done
# PortAudio is bundled from the build machine's copy (the sounddevice wheel ships none for Linux).
if ! ldconfig -p | grep -q 'libportaudio\.so\.2'; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        apt-get install -y -qq libportaudio2 >/dev/null
    else
        echo "build.sh: libportaudio2 is needed to bundle PortAudio (apt-get install libportaudio2)" >&2
        exit 2
    fi
fi

venv=build/venv-$variant
if [[ $reuse_venv == 0 || ! -x $venv/bin/python ]]; then
    say "clean venv $venv"
    rm -rf "$venv"
    "$PYTHON" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    say "torch ($variant): $torch_requirement"
    "$venv/bin/python" -m pip install --quiet "$torch_requirement"
    say "the studio and its dependencies, and the build tools"
    # A plain (not editable) install resolves exactly what a user's `pip install` would; the bundle
    # itself takes the studio's code from this checkout (the spec's pathex).
    "$venv/bin/python" -m pip install --quiet . -r packaging/requirements-build.txt
fi
cuda_build=$("$venv/bin/python" -c 'import torch; print(torch.version.cuda or "")')
if [[ $variant == cpu && -n $cuda_build ]]; then
    echo "build.sh: the torch in $venv is a CUDA build (CUDA $cuda_build); the cpu variant needs a CPU-only" \
        "wheel: set TORCH_REQUIREMENT to one, or point PIP_EXTRA_INDEX_URL at PyTorch's CPU wheel index" >&2
    exit 1
fi
if [[ $variant == cuda && -z $cuda_build ]]; then
    echo "build.sh: the torch in $venv is a CPU-only build; the cuda variant needs a CUDA wheel (TORCH_REQUIREMENT)" >&2
    exit 1
fi

version=$("$venv/bin/python" -c 'import sys; sys.path.insert(0, "."); import studio; print(studio.__version__)')
dist=dist/$variant
bundle=$dist/qwen-tts-studio
say "PyInstaller: $bundle (version $version)"
rm -rf "$bundle" "build/pyinstaller-$variant"
"$venv/bin/python" -m PyInstaller --noconfirm --log-level WARN \
    --distpath "$dist" --workpath "build/pyinstaller-$variant" packaging/qwen-tts-studio.spec

# build-info.json: what this bundle is, read by `qwen-tts-studio --self-test`.
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
dirty=false
[[ -n $(git status --porcelain --untracked-files=no 2>/dev/null) ]] && dirty=true
"$venv/bin/python" - "$bundle/build-info.json" "$version" "$variant" "$commit" "$dirty" <<'PY'
import json, platform, sys, datetime
import torch, PySide6, PyInstaller
out, version, variant, commit, dirty = sys.argv[1:]
info = {
    "name": "qwen-tts-studio",
    "version": version,
    "variant": variant,
    "torch": torch.__version__,
    "cuda": torch.version.cuda,
    "pyside6": PySide6.__version__,
    "python": platform.python_version(),
    "pyinstaller": PyInstaller.__version__,
    "platform": f"{platform.system().lower()}-{platform.machine()}",
    "git_commit": commit,
    "git_dirty": dirty == "true",
    "built_at": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
}
with open(out, "w", encoding="utf-8") as f:
    json.dump(info, f, indent=2)
    f.write("\n")
PY
bundle_mb=$(du -sm "$bundle" | cut -f1)
say "bundle: ${bundle_mb} MB"

arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
if [[ $make_tar == 1 ]]; then
    tarball=dist/qwen-tts-studio-$version-linux-$(uname -m)-$variant.tar.zst
    say "tarball: $tarball"
    rm -f "$tarball"
    tar -C "$dist" -cf - qwen-tts-studio | zstd -q -T0 -10 -o "$tarball"
fi
if [[ $make_deb == 1 ]]; then
    bash packaging/deb/build_deb.sh "$bundle" "$version" "$variant" "$arch"
fi
say "done in $(($(date +%s) - started)) s"
