"""The packaged desktop build, built and run the way a user gets it.

Builds the CPU bundle with `packaging/build.sh` (a clean venv, PyInstaller, the .tar.zst and the .deb),
then runs the frozen executable's self-test offscreen and on a real X server (Xvfb, xcb), runs a
training step through the frozen `--run-training` dispatch, unpacks the .deb into a scratch root with
`dpkg -x` and runs the installed launcher's self-test.

Slow (5 min 20 s on two cores, most of it pip and PyInstaller); part of the README's test
command and CI. `QWEN_TTS_STUDIO_PREBUILT=1` skips the build and tests what is already in dist/cpu
(for iterating on these tests; CI always builds).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import studio
from tests.xvfb import xvfb_display

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Linux bundle and .deb are built on Linux"),
    pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb is needed to build the .deb"),
]

ROOT = Path(__file__).resolve().parents[2]
VERSION = studio.__version__
DIST = ROOT / "dist"
BUNDLE = DIST / "cpu" / "qwen-tts-studio"
EXE = BUNDLE / "qwen-tts-studio"
DEB = DIST / f"qwen-tts-studio_{VERSION}_amd64.deb"
TARBALL = DIST / f"qwen-tts-studio-{VERSION}-linux-x86_64-cpu.tar.zst"
BUILD_TIMEOUT_S = 45 * 60


@pytest.fixture(scope="module")
def build() -> dict:
    """Run packaging/build.sh once for this module; returns what it printed and how long it took."""
    if os.environ.get("QWEN_TTS_STUDIO_PREBUILT") == "1" and EXE.is_file():
        return {"seconds": None, "log": ""}
    import time

    started = time.monotonic()
    done = subprocess.run(
        ["bash", "packaging/build.sh", "--torch", "cpu"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-4000:]
    return {"seconds": time.monotonic() - started, "log": log}


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment of a user's session: nothing from this checkout's venv or test run leaks in."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM", "PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    }
    env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    env.update(extra)
    return env


def _self_test(program: Path, env: dict[str, str], home: Path) -> dict:
    env = {**env, "HOME": str(home)}
    done = subprocess.run(
        [str(program), "--self-test"], capture_output=True, text=True, env=env, timeout=600, cwd=home.parent
    )
    try:
        report = json.loads(done.stdout)
    except ValueError:
        pytest.fail(f"the self-test printed no JSON report (exit {done.returncode}): {done.stderr[-3000:]}")
    assert done.returncode == 0, json.dumps(report, indent=1) + done.stderr[-3000:]
    assert report["ok"] and report["failed"] == []
    return report


def test_build_writes_the_bundle_the_tarball_and_the_deb(build):
    assert EXE.is_file() and os.access(EXE, os.X_OK)
    info = json.loads((BUNDLE / "build-info.json").read_text())
    assert info["version"] == VERSION and info["variant"] == "cpu" and info["cuda"] is None
    assert TARBALL.is_file() and DEB.is_file()
    listing = subprocess.run(["tar", "--zstd", "-tf", str(TARBALL)], capture_output=True, text=True, check=True)
    assert "qwen-tts-studio/qwen-tts-studio\n" in listing.stdout
    assert "qwen-tts-studio/build-info.json\n" in listing.stdout
    # What the first run and Help need, where the code looks for them (beside resources/, as in a checkout).
    internal = BUNDLE / "_internal"
    assert (internal / "resources" / "sample" / "sample.qtts").is_file()
    assert (internal / "README.md").read_text(encoding="utf-8").startswith("# Qwen3-TTS Studio")
    assert (internal / "docs" / "rendered-project.png").is_file()


def test_bundle_leaves_out_what_the_studio_never_imports(build):
    internal = BUNDLE / "_internal"
    for unused in ("gradio", "fastapi", "uvicorn", "starlette", "gradio_client"):
        assert not (internal / unused).exists(), f"{unused} was bundled"
    # PortAudio travels with the bundle; ALSA must be the system's (its plugins reach PulseAudio/PipeWire).
    names = {p.name for p in internal.rglob("*.so*")}
    assert any(n.startswith("libportaudio.so") for n in names)
    assert not any(n.startswith(("libasound.so", "libjack.so")) for n in names)


def test_frozen_self_test_offscreen(build, tmp_path):
    report = _self_test(EXE, _clean_env(), tmp_path / "home")
    checks = report["checks"]
    assert checks["python"]["frozen"] is True
    assert checks["python"]["build"]["version"] == VERSION
    assert checks["torch"]["cuda_build"] is None
    assert checks["qt"]["platform"] == "offscreen"
    assert checks["engine"]["emotion"] == "Whispering" and checks["engine"]["chunks"] >= 2
    # The bundle carries the audiobook exports' FFmpeg (PyAV) and mutagen, and the pace stretch (librosa).
    assert checks["audiobook"]["ok"] and [t for t, _ in checks["audiobook"]["m4b"]["chapters"]] == ["One", "Two"]
    # PortAudio came from the bundle, ALSA from the system.
    assert checks["audio"]["library"].startswith(str(BUNDLE))
    assert "libasound" not in checks["audio"] or not checks["audio"]["libasound"].startswith(str(BUNDLE))


def test_frozen_self_test_on_xcb(build, tmp_path):
    with xvfb_display() as display:
        report = _self_test(EXE, _clean_env(DISPLAY=display, QT_QPA_PLATFORM="xcb"), tmp_path / "home")
    assert report["checks"]["qt"]["platform"] == "xcb"
    assert report["checks"]["qt"]["waveform_changed_px"] >= 200


def test_frozen_build_runs_a_training_step(build, tmp_path):
    # The wizard starts every step as `<exe> --run-training training.X ...`: from the bundle, that has
    # to reach the real training code (here: validation of a two-clip dataset).
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    t = np.arange(24000 * 2) / 24000
    for name, text in (("a", "Hello there."), ("b", "A second recording.")):
        sf.write(dataset / f"{name}.wav", (0.2 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 24000)
        (dataset / f"{name}.txt").write_text(text)
    run = tmp_path / "run"
    done = subprocess.run(
        [str(EXE), "--run-training", "training.validate", str(dataset), "--out", str(run)],
        capture_output=True,
        text=True,
        env=_clean_env(HOME=str(tmp_path)),
        timeout=300,
    )
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0, done.stderr[-3000:]
    assert events and events[-1]["event"] == "done", events[-3:]


def test_deb_installs_and_its_launcher_passes_the_self_test(build, tmp_path):
    def field(name: str) -> str:
        return subprocess.run(["dpkg-deb", "-f", str(DEB), name], capture_output=True, text=True, check=True).stdout

    fields = {name: field(name).strip() for name in ("Package", "Version", "Architecture", "Depends")}
    assert fields["Package"] == "qwen-tts-studio" and fields["Version"] == VERSION
    assert "libasound2" in fields["Depends"] and "libxcb-cursor0" in fields["Depends"]
    contents = subprocess.run(["dpkg-deb", "-c", str(DEB)], capture_output=True, text=True, check=True).stdout
    for path in (
        "./opt/qwen-tts-studio/qwen-tts-studio",
        "./usr/bin/qwen-tts-studio",
        "./usr/share/applications/qwen-tts-studio.desktop",
        "./usr/share/icons/hicolor/256x256/apps/qwen-tts-studio.png",
    ):
        assert re.search(rf" {re.escape(path)}(\n| ->)", contents), f"{path} is not in the package"
    # Owned by root whoever built it.
    assert " root/root " in contents.splitlines()[0]

    # Every Depends group is satisfiable: this machine (set up by the README's command) has one of each,
    # so the self-test below runs against exactly the system libraries a real install would have.
    for group in _depends_packages():
        installed = [
            pkg
            for pkg in group
            if "ok installed"
            in subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True).stdout
        ]
        assert installed, f"none of {sorted(group)} is installed"

    root = tmp_path / "root"
    subprocess.run(["dpkg", "-x", str(DEB), str(root)], check=True)
    desktop = (root / "usr/share/applications/qwen-tts-studio.desktop").read_text()
    assert "Exec=qwen-tts-studio %f" in desktop and "Icon=qwen-tts-studio" in desktop
    if shutil.which("desktop-file-validate"):
        entry = root / "usr/share/applications/qwen-tts-studio.desktop"
        subprocess.run(["desktop-file-validate", str(entry)], check=True)
    launcher = root / "usr/bin/qwen-tts-studio"
    report = _self_test(launcher, _clean_env(), tmp_path / "home")
    assert report["checks"]["python"]["executable"].startswith(str(root / "opt/qwen-tts-studio"))


def _depends_packages() -> list[set[str]]:
    depends = subprocess.run(["dpkg-deb", "-f", str(DEB), "Depends"], capture_output=True, text=True, check=True).stdout
    groups = []
    for group in depends.split(","):
        groups.append({alt.split("(")[0].strip() for alt in group.split("|")})
    return groups


def _installed_closure(packages: set[str]) -> set[str]:
    """The installed packages among ``packages`` and, recursively, the installed packages they depend on."""
    seen: set[str] = set()
    todo = list(packages)
    while todo:
        pkg = todo.pop()
        if pkg in seen:
            continue
        done = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}\t${Depends}, ${Pre-Depends}", pkg], capture_output=True, text=True
        )
        if done.returncode != 0 or "ok installed" not in done.stdout:
            continue
        seen.add(pkg)
        deps = done.stdout.split("\t", 1)[1]
        for group in deps.split(","):
            for alt in group.split("|"):
                name = alt.split("(")[0].strip().split(":")[0]
                if name:
                    todo.append(name)
    return seen


def test_depends_covers_every_system_library_the_bundle_loads(build):
    """Each shared library the bundle resolves from the system belongs to a package in Depends.

    ldd runs with the bundle's own folder first on the search path, as the frozen executable's loader
    has it, so a library that the bundle carries never counts as a system one.
    """
    internal = BUNDLE / "_internal"
    elves = [EXE] + [p for p in internal.rglob("*.so*") if p.is_file() and not p.is_symlink()]
    env = {**os.environ, "LD_LIBRARY_PATH": str(internal), "LC_ALL": "C"}
    system_paths: set[str] = set()
    unresolved: dict[str, set[str]] = {}
    for start in range(0, len(elves), 200):
        done = subprocess.run(["ldd", *map(str, elves[start : start + 200])], capture_output=True, text=True, env=env)
        current = ""
        for line in done.stdout.splitlines():
            if not line.startswith(("\t", " ")):
                current = line.rstrip(":")
                continue
            match = re.match(r"\s+(\S+) => (\S+)", line)
            if not match:
                continue
            name, path = match.groups()
            if path == "not":
                unresolved.setdefault(str(Path(current).relative_to(BUNDLE)), set()).add(name)
            elif not path.startswith(str(BUNDLE)):
                system_paths.add(os.path.realpath(path))
    # Parts of the bundle that are loaded only on demand, and never on the studio's paths:
    optional = re.compile(
        r"^_internal/("
        # torchaudio's op library is built against CUDA torch; qwen-tts uses torchaudio.compliance.kaldi
        # (plain torch code) and only in the 25 Hz tokenizer, which the 12 Hz models never load.
        r"torchaudio/lib/"
        # numba's TBB threading layer, tried only when TBB is installed (numba falls back to OpenMP).
        r"|numba/np/ufunc/tbbpool"
        # Qt's GTK3 theme plugin, loaded only inside a GTK desktop, which has GTK.
        r"|PySide6/Qt/plugins/platformthemes/libqgtk3"
        r")"
    )
    broken = {elf: sorted(names) for elf, names in unresolved.items() if not optional.match(elf)}
    assert not broken, f"libraries found neither in the bundle nor on the system: {broken}"
    owners: dict[str, str] = {}
    for path in sorted(system_paths):
        done = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
        if done.returncode != 0:
            # Debian's merged /usr: /lib/x86_64-linux-gnu/x is registered as /usr/lib/... and vice versa.
            other = path[4:] if path.startswith("/usr/") else "/usr" + path
            done = subprocess.run(["dpkg", "-S", other], capture_output=True, text=True)
        assert done.returncode == 0, f"{path}: no Debian package owns it"
        owners[path] = done.stdout.split(":")[0].strip()
    # What installing the .deb brings: the Depends and, through apt, everything they depend on.
    allowed = _installed_closure(set().union(*_depends_packages()))
    # Part of every Debian/Ubuntu system (Essential, or required by libc6 itself).
    base = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g"}
    uncovered = {f"{path} ({pkg})" for path, pkg in owners.items() if pkg not in allowed | base}
    assert not uncovered, f"system libraries the .deb does not depend on: {sorted(uncovered)}"
