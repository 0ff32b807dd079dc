#!/usr/bin/env bash
# Turn a built bundle into a .deb with dpkg-deb (called by packaging/build.sh).
#
#   bash packaging/deb/build_deb.sh BUNDLE_DIR VERSION cpu|cuda [ARCH]
#
# Layout: the bundle in /opt/qwen-tts-studio, a launcher in /usr/bin, the desktop entry, icons and the
# project file type under /usr/share. Depends names the system libraries the bundle leaves to the
# system (Qt's xcb platform plugin, ALSA, the GL/EGL stack); tests/packaging checks the list against
# what the bundle's libraries actually load.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bundle=$1
version=$2
variant=$3
arch=${4:-amd64}
here=packaging/deb

package=qwen-tts-studio
[[ $variant == cuda ]] && package=qwen-tts-studio-cuda
stage=build/deb-$variant/root
rm -rf "build/deb-$variant"
mkdir -p "$stage/DEBIAN" "$stage/opt" "$stage/usr/bin" "$stage/usr/share/applications" \
    "$stage/usr/share/icons/hicolor/256x256/apps" "$stage/usr/share/icons/hicolor/scalable/apps" \
    "$stage/usr/share/mime/packages" "$stage/usr/share/doc/$package"

cp -a "$bundle" "$stage/opt/qwen-tts-studio"
install -m 0755 "$here/qwen-tts-studio.launcher" "$stage/usr/bin/qwen-tts-studio"
install -m 0644 resources/qwen-tts-studio.desktop "$stage/usr/share/applications/qwen-tts-studio.desktop"
install -m 0644 resources/icons/qwen-tts-studio.png "$stage/usr/share/icons/hicolor/256x256/apps/qwen-tts-studio.png"
install -m 0644 resources/icons/qwen-tts-studio.svg "$stage/usr/share/icons/hicolor/scalable/apps/qwen-tts-studio.svg"
install -m 0644 resources/qwen-tts-studio-mime.xml "$stage/usr/share/mime/packages/qwen-tts-studio.xml"
cat >"$stage/usr/share/doc/$package/copyright" <<'TEXT'
Qwen3-TTS Studio is licensed under the Apache License 2.0
(/usr/share/common-licenses/Apache-2.0). The bundled third-party components in
/opt/qwen-tts-studio (Python, PySide6/Qt, PyTorch, qwen-tts, PortAudio, ...) keep their own
licenses, shipped with them in the bundle's package metadata folders.
TEXT

depends=$(grep -v '^#' "$here/depends.txt" | sed '/^\s*$/d' | paste -sd, | sed 's/,/, /g')
installed_kb=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
{
    echo "Package: $package"
    echo "Version: $version"
    echo "Architecture: $arch"
    echo "Section: sound"
    echo "Priority: optional"
    echo "Maintainer: Qwen3-TTS Studio developers <studio@qwen-tts-studio.invalid>"
    echo "Installed-Size: $installed_kb"
    echo "Depends: $depends"
    echo "Recommends: libasound2-plugins | pipewire-alsa"
    if [[ $variant == cuda ]]; then
        echo "Provides: qwen-tts-studio"
        echo "Conflicts: qwen-tts-studio"
        echo "Replaces: qwen-tts-studio"
    else
        echo "Conflicts: qwen-tts-studio-cuda"
    fi
    echo "Description: desktop editor for long-form expressive speech with Qwen3-TTS"
    echo " Write a script, place emotion tags on its lines on a timeline, lock a voice"
    echo " (designed, cloned, preset or fine-tuned) and render with the Qwen3-TTS 12Hz"
    echo " models, hearing each line while the rest renders. Includes a fine-tuning wizard."
    if [[ $variant == cuda ]]; then
        echo " ."
        echo " This build renders on NVIDIA GPUs (CUDA) and needs the NVIDIA driver."
    fi
} >"$stage/DEBIAN/control"

out=dist/${package}_${version}_${arch}.deb
rm -f "$out"
# zstd rather than xz: on a 1.4 GB bundle xz -6 took 13 minutes on two cores for a package 16% smaller
# (326 vs 386 MB); zstd -9 took 20 s. zstd members need dpkg 1.21.18 or newer: Debian 12, Ubuntu 22.04.
dpkg-deb --root-owner-group -Zzstd -z9 --build "$stage" "$out" >/dev/null
rm -rf "build/deb-$variant"  # a second copy of the bundle: 1.4 GB for the CPU variant
echo "wrote $out ($(du -m "$out" | cut -f1) MB)" >&2
