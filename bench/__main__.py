"""`python -m bench`: the studio's performance figures, each measured side by side in one run.

Machines here are noisy (two shared cores), so every comparison alternates its contenders run by run
and reports the ratio of medians; absolute numbers are printed for context only. Nothing here is a
pass/fail check: the table is the result.

    python -m bench [--quick] [--out FILE.md] [--device cpu|cuda] [--full-size [--cache-dir DIR]]
    python -m bench --decode-only [--device cpu|cuda] [--full-size-frames N]

`--full-size` adds figures for a random-weight checkpoint at the published 1.7B dimensions (see
studio/engine/tiny.py): real-time factor, frames/s and time to first audio of the real model's size
on the chosen device, and the fast-decode comparison (bench/decode.py: reference, fast, compiled and int8
decoders at the 1.7B and 0.6B sizes). Checkpoints (4.5 and 2.5 GB) are built once into --cache-dir and
reused. `--decode-only` runs just the fast-decode comparison.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# The benchmark renders for real but must neither read the user's render cache (everything would be
# "cached") nor write settings, voices or renders into their folders.
_SCRATCH = tempfile.mkdtemp(prefix="qtts-bench-")
for _variable in ("XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME"):
    os.environ[_variable] = os.path.join(_SCRATCH, _variable.lower())


def alternate(contenders: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median wall time of each contender, run in turn (A B C A B C ...) after one warm-up each.

    A contender that returns a number (a time it measured itself, such as the time to its first
    chunk) gets the median of those numbers instead of its wall time; the warm-up's is never counted.
    """
    for fn in contenders.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            started = time.perf_counter()
            measured = fn()
            elapsed = time.perf_counter() - started
            times[name].append(float(measured) if isinstance(measured, (int, float)) else elapsed)
    return {name: statistics.median(values) for name, values in times.items()}


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str]] = []

    def add(self, figure: str, ratio: str, detail: str, target: str = "") -> None:
        self.rows.append((figure, ratio, detail, target))
        print(f"  {figure}: {ratio}  ({detail})", flush=True)

    def markdown(self) -> str:
        lines = ["| figure | ratio | measured | target |", "|---|---|---|---|"]
        lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in self.rows]
        return "\n".join(lines)


def cpu_name() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return cpu


def machine_description() -> str:
    import torch

    cpu = cpu_name()
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}, "
            f"{device}")


# --- engine ---------------------------------------------------------------------------------------------


def bench_engine(table: Table, checkpoint: Path, *, repeats: int, device: str) -> None:
    from studio.core.project import GenerationParams
    from studio.core.voice import VoiceSpec
    from studio.engine.loader import load_model
    from studio.engine.synth import StreamingSettings, Synthesizer, SynthRequest

    loaded = load_model(str(checkpoint), device=device)
    tts = loaded.tts
    text = "The storm had been building over the valley since noon, and nobody wanted to go out."
    frames = 126  # about 10 s of audio; random weights never stop early, so every run makes all of them
    voice = VoiceSpec.design("An old storyteller with a warm, low voice")
    request = SynthRequest(text, voice, seed=1, generation=GenerationParams(max_new_tokens=frames))
    one_shot = Synthesizer(loaded, streaming=StreamingSettings(enabled=False))
    streaming = Synthesizer(loaded)
    import torch

    def direct() -> None:
        torch.manual_seed(1)
        tts.generate_voice_design(text=text, instruct="An old storyteller with a warm, low voice.",
                                  language="auto", max_new_tokens=frames)

    def studio_one_shot() -> None:
        list(one_shot.stream(request))

    def studio_streaming() -> None:
        list(streaming.stream(request))

    def streaming_first_chunk() -> float:
        started = time.perf_counter()
        stream = streaming.stream(request)
        next(stream)
        first = time.perf_counter() - started
        list(stream)
        return first

    timings = alternate(
        {"direct": direct, "one_shot": studio_one_shot, "streaming": studio_streaming,
         "first": streaming_first_chunk},
        repeats,
    )
    audio_seconds = (frames - 1) / 12.5
    table.add("engine overhead, one-shot (studio / qwen-tts direct)", f"{timings['one_shot'] / timings['direct']:.3f}x",
              f"{timings['one_shot']:.2f} s vs {timings['direct']:.2f} s for {frames - 1} frames", "<= 1.05x")
    table.add("engine overhead, streaming (studio / qwen-tts direct)",
              f"{timings['streaming'] / timings['direct']:.3f}x",
              f"{timings['streaming']:.2f} s vs {timings['direct']:.2f} s (includes chunked decode)", "")
    ttfa = timings["first"]
    table.add("time to first audio, streaming / one-shot (10 s segment)", f"{ttfa / timings['one_shot']:.3f}x",
              f"{ttfa * 1000:.0f} ms vs {timings['one_shot'] * 1000:.0f} ms", "<= 0.25x")
    table.add(f"real-time factor on {loaded.info.device} (streaming; lower is faster)",
              f"{timings['streaming'] / audio_seconds:.3f}",
              f"{(frames - 1) / timings['streaming']:.1f} frames/s, {audio_seconds:.1f} s of audio, "
              f"{loaded.info.summary()}", "")


# --- full size (published 1.7B dimensions, random weights) ---------------------------------------------

FULL_SIZE_SEED = 0
_FULL_SIZE_FOLDER = re.compile(r"voice_design-full-seed\d+-[0-9a-f]{12}")


def full_size_checkpoint(cache_dir: Path) -> tuple[Path, float | None]:
    """The full-size VoiceDesign checkpoint in ``cache_dir``, built if missing, and its build time.

    The build time is None when a cached checkpoint was reused. The folder name carries a hash of
    the size's definition, so changing a dimension or gain in studio/engine/tiny.py builds afresh;
    checkpoints from older definitions are deleted (4.5 GB each). A build appears atomically (it is
    renamed into place), so an existing folder is a complete one.
    """
    from studio.engine.tiny import SIZES, build_tiny_checkpoint

    key = hashlib.sha256(repr(SIZES["full"]).encode("utf-8")).hexdigest()[:12]
    folder = cache_dir / f"voice_design-full-seed{FULL_SIZE_SEED}-{key}"
    if (folder / "config.json").is_file():
        return folder, None
    if cache_dir.is_dir():
        for stale in cache_dir.iterdir():
            if stale != folder and stale.is_dir() and _FULL_SIZE_FOLDER.fullmatch(stale.name):
                print(f"  removing an outdated full-size checkpoint: {stale}", flush=True)
                shutil.rmtree(stale, ignore_errors=True)
    print(f"  building the full-size checkpoint into {folder} (about 4.5 GB; once)", flush=True)
    started = time.perf_counter()
    build_tiny_checkpoint(folder, model_type="voice_design", seed=FULL_SIZE_SEED, size="full")
    return folder, time.perf_counter() - started


def device_name(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    if device == "cpu":
        return f"{cpu_name()}, {torch.get_num_threads()} threads"
    return device


def bench_full_size(table: Table, cache_dir: Path, *, device: str, frames: int | None, repeats: int) -> None:
    import torch

    from studio.core.project import GenerationParams
    from studio.core.voice import VoiceSpec
    from studio.engine.loader import load_model
    from studio.engine.synth import StreamingSettings, Synthesizer, SynthRequest

    section_started = time.perf_counter()
    checkpoint, build_seconds = full_size_checkpoint(cache_dir)
    weights_gb = sum(p.stat().st_size for p in checkpoint.rglob("*.safetensors")) / 1e9
    started = time.perf_counter()
    loaded = load_model(str(checkpoint), device=device)
    load_seconds = time.perf_counter() - started
    info = loaded.info
    name = device_name(info.device)
    print(f"  loaded in {load_seconds:.1f} s: {info.parameters:,} parameters, {info.dtype} on {name}", flush=True)
    if frames is None:
        # On two CPU cores a full-size frame takes about half a second: 32 frames keep each run
        # under a minute; a GPU gets the tiny figures' 10 s segment.
        frames = 32 if info.device == "cpu" else 126
    text = "The storm had been building over the valley since noon, and nobody wanted to go out."
    voice = VoiceSpec.design("An old storyteller with a warm, low voice")

    def request(max_new_tokens: int) -> SynthRequest:
        return SynthRequest(text, voice, seed=1, generation=GenerationParams(max_new_tokens=max_new_tokens))

    one_shot = Synthesizer(loaded, streaming=StreamingSettings(enabled=False))
    streaming = Synthesizer(loaded)
    # The first generate pays one-off costs (allocator growth, kernel selection, CUDA context), which
    # a few frames through both paths absorb before anything is timed.
    list(one_shot.stream(request(4)))
    list(streaming.stream(request(4)))
    if info.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()

    measured = request(frames)
    times: dict[str, list[float]] = {"one_shot": [], "streaming": [], "first": []}
    samples = 0
    for _ in range(repeats):
        # Every chunk is a numpy array copied off the device, so wall time here includes the GPU's work.
        started = time.perf_counter()
        samples = sum(len(chunk.samples) for chunk in one_shot.stream(measured))
        times["one_shot"].append(time.perf_counter() - started)
        started = time.perf_counter()
        stream = streaming.stream(measured)
        first = next(stream)
        times["first"].append(time.perf_counter() - started)
        streamed = len(first.samples) + sum(len(chunk.samples) for chunk in stream)
        times["streaming"].append(time.perf_counter() - started)
        if streamed != samples:
            raise RuntimeError(f"streaming gave {streamed} samples, one-shot {samples}")
    median = {key: statistics.median(values) for key, values in times.items()}
    audio_seconds = samples / info.sample_rate
    audio_frames = round(audio_seconds * 12.5)

    # The decoder's share of the one-shot time: random codes decode like generated ones.
    codes = torch.randint(0, 2048, (audio_frames, 16), generator=torch.Generator().manual_seed(0))
    speech_tokenizer = loaded.tts.model.speech_tokenizer
    started = time.perf_counter()
    speech_tokenizer.decode([{"audio_codes": codes.to(info.device)}])
    decode_seconds = time.perf_counter() - started

    extra = ""
    if info.device.startswith("cuda"):
        extra = f"; peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB"
    section_seconds = time.perf_counter() - section_started
    built = "reused from the cache" if build_seconds is None else f"built in {build_seconds:.0f} s"
    runs = f"median of {repeats}" if repeats > 1 else "one run"
    table.add("full size (1.7B dims, random weights): checkpoint build / load",
              f"{'cached' if build_seconds is None else f'{build_seconds:.0f} s'} / {load_seconds:.0f} s",
              f"{weights_gb:.1f} GB of safetensors ({built}); {info.parameters:,} parameters loaded as "
              f"{info.dtype} on {name}{extra}; this section took {section_seconds:.0f} s", "")
    for key, label in (("one_shot", "one-shot"), ("streaming", "streaming")):
        table.add(f"full size: real-time factor, {label} (lower is faster)",
                  f"{median[key] / audio_seconds:.2f}",
                  f"{audio_frames / median[key]:.2f} frames/s: {audio_frames} frames = {audio_seconds:.2f} s of "
                  f"audio in {median[key]:.1f} s ({runs}) on {name}, {info.dtype}", "")
    table.add("full size: time to first audio, streaming / one-shot",
              f"{median['first'] / median['one_shot']:.3f}x",
              f"{median['first'] * 1000:.0f} ms vs {median['one_shot'] * 1000:.0f} ms for the whole "
              f"{audio_seconds:.1f} s segment; decoding all {audio_frames} frames at once takes "
              f"{decode_seconds * 1000:.0f} ms", "")


# --- UI -------------------------------------------------------------------------------------------------


def bench_ui_stall(table: Table, checkpoint: Path) -> None:  # noqa: C901
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from studio.core.project import CastEntry, GenerationParams
    from studio.core.voice import VoiceSpec
    from studio.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    window = MainWindow()
    window.resize(1280, 820)
    window.show()
    window.project.render.model = str(checkpoint)
    window.project.render.generation = GenerationParams(max_new_tokens=40)
    window.project.cast["Narrator"] = CastEntry(voice=VoiceSpec.design("A narrator"))
    window.project.render.voice = "Narrator"
    window.project.render.output_dir = tempfile.mkdtemp(prefix="bench-renders-")
    window.machine.device = "cpu"
    emotions = ["Whispering", "Angry", "Soft", "Happy", "Sad"]
    window.editor.setPlainText("\n".join(
        f"[{emotions[i % 5]}]Line {i + 1} of the benchmark script, long enough to render. [pause 0.2s]"
        for i in range(20)))
    window.refresh_views()
    # As the app does at start-up: torch and qwen-tts are imported on the render thread before the
    # first render, so the render itself only loads weights.
    window.renderer.prewarm()
    while "qwen_tts" not in sys.modules:
        app.processEvents()
        time.sleep(0.01)
    gaps: list[tuple[float, float]] = []
    last = [time.perf_counter()]
    loaded_at: list[float] = []
    window.renderer.worker.model_loaded.connect(lambda *_: loaded_at.append(time.perf_counter()))

    def tick() -> None:
        now = time.perf_counter()
        gaps.append((now - last[0], now))
        last[0] = now

    timer = QTimer()
    timer.setInterval(2)
    timer.timeout.connect(tick)
    window.render_all()
    started = time.perf_counter()
    timer.start()
    while window.last_outcome is None and time.perf_counter() - started < 600:
        app.processEvents()
        time.sleep(0.001)
    finished = time.perf_counter()
    while window._export_thread is not None:
        app.processEvents()
        time.sleep(0.001)
    timer.stop()
    streaming = [g for g, at in gaps if loaded_at and loaded_at[0] <= at <= finished]
    loading = [g for g, at in gaps if loaded_at and at < loaded_at[0]]
    exporting = [g for g, at in gaps if at > finished]
    segments = len(window.last_outcome.results)
    table.add("longest UI event-loop stall while a 20-line render streams in", f"{max(streaming) * 1000:.1f} ms",
              f"{segments} segments over {finished - loaded_at[0]:.1f} s, median gap "
              f"{statistics.median(streaming) * 1000:.1f} ms (2 ms timer); while the weights loaded: "
              f"{max(loading, default=0) * 1000:.0f} ms; while the export was written: "
              f"{max(exporting, default=0) * 1000:.0f} ms", "< 50 ms")
    window.shutdown()
    window.undo_stack.setClean()
    window.close()


def bench_waveform(table: Table, *, minutes: int) -> None:
    import numpy as np
    from PySide6.QtWidgets import QApplication

    from studio.core.peaks import BASE_BLOCK
    from studio.ui.waveform import WaveformView

    app = QApplication.instance() or QApplication([])
    view = WaveformView()
    view.resize(1600, 200)
    view.show()
    rate = 24000
    rng = np.random.default_rng(0)
    chunk = (0.1 * rng.standard_normal(rate * 10)).astype(np.float32)
    started = time.perf_counter()
    for _ in range(minutes * 6):
        view.append(chunk)
    append_seconds = time.perf_counter() - started
    samples = np.asarray(view.audio.view())
    total = len(samples)

    view.axis.fit()

    def pyramid_redraw() -> None:
        view._redraw()
        app.processEvents()

    def naive_envelope() -> None:
        # What drawing without the pyramid costs: a min/max over every sample for each redraw.
        columns = 1600
        usable = total - total % columns
        blocks = samples[:usable].reshape(columns, -1)
        blocks.min(axis=1)
        blocks.max(axis=1)

    timings = alternate({"pyramid": pyramid_redraw, "naive": naive_envelope}, 5)
    table.add(f"waveform redraw, {minutes} min of audio (pyramid / full scan)",
              f"{timings['pyramid'] / timings['naive']:.4f}x",
              f"{timings['pyramid'] * 1000:.1f} ms vs {timings['naive'] * 1000:.0f} ms per full-view redraw; "
              f"appending all of it in 10 s chunks took {append_seconds:.1f} s; finest block {BASE_BLOCK}",
              "smooth (< 16 ms)")
    view.close()


def bench_editor_redraw(table: Table, *, hours: float) -> None:
    """The editor's timeline and waveform redrawn over a long project: whole project in view, and zoomed
    to half a minute in its middle. `grab()` paints both views completely, as an expose does."""
    import numpy as np
    from PySide6.QtWidgets import QApplication

    from studio.ui.arrange_view import ArrangeView
    from studio.ui.clip_info import Chip, ClipInfo

    app = QApplication.instance() or QApplication([])
    view = ArrangeView()
    view.resize(1600, 520)
    view.show()
    rate = 24000
    seconds_per_line = 1.5
    lines = int(hours * 3600 / seconds_per_line)
    emotions = ["Whispering", "Angry", "Soft", "Happy", "Sad"]
    voices = ["Narrator", "Mira", "Keeper"]
    clips = [ClipInfo(index=i, line_id=i, text=f"Line {i + 1}: a sentence of ordinary length.", voice=voices[i % 3],
                      chips=[Chip(emotions[i % 5], column=0, tag_text=f"[{emotions[i % 5]}]")],
                      pieces=[("speech", 1.2), ("pause", 0.3)], estimated=False, state="done")
             for i in range(lines)]
    started = time.perf_counter()
    view.timeline.set_clips(clips, lanes=voices)
    layout_seconds = time.perf_counter() - started
    rng = np.random.default_rng(0)
    chunk = (0.1 * rng.standard_normal(rate * 60)).astype(np.float32)
    started = time.perf_counter()
    for _ in range(int(hours * 60)):
        view.waveform.append(chunk)
    view.waveform.flush()
    append_seconds = time.perf_counter() - started
    total = len(view.waveform.audio) / rate

    def redraw() -> None:
        view.waveform._redraw()
        view.grab()

    view.axis.fit()
    app.processEvents()
    whole = alternate({"whole": redraw}, 5)["whole"]
    view.axis.zoom(1e9, total / 2)
    view.axis.zoom(view.axis.view_width / 30 / view.axis.pixels_per_second, total / 2)
    app.processEvents()
    zoomed = alternate({"zoomed": redraw}, 5)["zoomed"]
    table.add(f"timeline + waveform redraw at {hours:g} h ({lines:,} lines, {len(voices)} lanes): whole project / "
              "30 s in view", f"{whole / zoomed:.2f}x",
              f"{whole * 1000:.1f} ms whole, {zoomed * 1000:.1f} ms zoomed in (1600 px wide); clip layout "
              f"{layout_seconds * 1000:.0f} ms, {total / 3600:.1f} h of audio appended in {append_seconds:.1f} s",
              "each < 16 ms")
    view.waveform.close()
    view.close()


def bench_long_script_editing(table: Table, *, lines: int) -> None:
    """Typing in the middle of a long script: the keystroke (editor -> model -> analysis) and the timeline
    refresh that follows it, against a refresh of every line (what each keystroke used to cost)."""
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from studio.core.project import Project
    from studio.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    window = MainWindow()
    window.resize(1400, 900)
    window.show()
    tags = ["[Angry]", "[Whispering]", "", "[pause 0.5s]", "[voice: Mira]"]
    script = "\n".join(f"{tags[i % 5]}Line {i + 1}: a sentence of ordinary length for a long book."
                       for i in range(lines))
    window.project.cast.clear()
    started = time.perf_counter()
    window._set_project(Project(script=script), None)
    app.processEvents()
    open_seconds = time.perf_counter() - started
    window.editor.move_cursor_to(lines // 2, 30)  # in the sentence, after any tag
    window.editor.setFocus()
    keys = iter("abcdefghijklmnopqrstuvwxyz" * 4)

    def keystroke() -> None:
        QTest.keyClick(window.editor, next(keys))

    def refresh_changed() -> float:
        QTest.keyClick(window.editor, next(keys))
        started = time.perf_counter()
        window.refresh_changed()
        return time.perf_counter() - started

    def refresh_everything() -> float:
        QTest.keyClick(window.editor, next(keys))
        started = time.perf_counter()
        window.refresh_views()
        return time.perf_counter() - started

    typing = alternate({"keystroke": keystroke}, 9)["keystroke"]
    timings = alternate({"changed": refresh_changed, "everything": refresh_everything}, 3)
    table.add(f"typing in line {lines // 2:,} of a {lines:,}-line script: timeline refresh of the changed lines / "
              "of every line", f"{timings['changed'] / timings['everything']:.4f}x",
              f"{timings['changed'] * 1000:.1f} ms vs {timings['everything'] * 1000:.0f} ms; the keystroke itself "
              f"{typing * 1000:.1f} ms; opening the script {open_seconds:.1f} s", "keystroke + refresh < 16 ms")
    window.shutdown()
    window.undo_stack.setClean()
    window.close()


def bench_open_project(table: Table) -> None:
    from PySide6.QtWidgets import QApplication

    from studio.core.project import Project, save_project
    from studio.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    folder = Path(tempfile.mkdtemp(prefix="bench-project-"))
    emotions = ["Whispering", "Angry", "Soft", "Happy", "Sad"]
    paths = {}
    for lines in (500, 5000):
        script = "\n".join(f"[{emotions[i % 5]}]Line {i + 1}: a sentence of ordinary length for a long book. "
                           f"[pause 0.3s] And a second clause." for i in range(lines))
        paths[lines] = folder / f"p{lines}.qtts"
        save_project(Project(script=script), paths[lines])
    window = MainWindow()
    window.show()

    def opener(lines: int) -> Callable[[], None]:
        def run() -> None:
            window.open_project(paths[lines])
            app.processEvents()
        return run

    timings = alternate({"500": opener(500), "5000": opener(5000)}, 3)
    table.add("opening a 5,000-line project (time / 10x the 500-line time)",
              f"{timings['5000'] / (10 * timings['500']):.2f}x",
              f"{timings['5000'] * 1000:.0f} ms for 5,000 lines, {timings['500'] * 1000:.0f} ms for 500 "
              "(parse, timeline layout, editor)", "about linear (<= 1x)")
    window.shutdown()
    window.undo_stack.setClean()
    window.close()


def bench_mixed_cast(table: Table, root: Path, *, repeats: int) -> None:
    """A three-voice cast on three tiny checkpoints, interleaved line by line (A B C A B C ...).

    Side by side, with the real loader: the session's render with room for every model (script order,
    each model loaded once), its render with room for one (grouped by model, each loaded once), and the
    same one-model budget in script order (what a plain LRU would do: a load at every line).
    """
    from studio.core.plan import plan_segments
    from studio.core.project import GenerationParams
    from studio.core.tags import parse_script
    from studio.core.voice import VoiceSpec
    from studio.engine.tiny import build_tiny_checkpoint
    from studio.session.pipeline import RenderJob, run_job
    from studio.session.residency import ModelResidency

    checkpoints = {kind: build_tiny_checkpoint(root / kind, model_type=kind)
                   for kind in ("voice_design", "base", "custom_voice")}
    clip = root / "guest.wav"
    import numpy as np
    import soundfile

    t = np.arange(36000) / 24000
    soundfile.write(clip, (0.2 * np.sin(2 * np.pi * 150 * t)).astype(np.float32), 24000)
    voices = {"A": VoiceSpec("design", description="a calm narrator", model=str(checkpoints["voice_design"])),
              "B": VoiceSpec("clone", ref_audio=str(clip), ref_text="This is me.", model=str(checkpoints["base"])),
              "C": VoiceSpec("preset", speaker="ryan", model=str(checkpoints["custom_voice"]))}
    models = {name: voice.model for name, voice in voices.items()}
    script = "\n".join(f"[voice: {'ABC'[i % 3]}]Line number {i + 1}." for i in range(12))
    segments = plan_segments(parse_script(script))
    loads: dict[str, int] = {}

    def session_render(budget: int | None, name: str) -> Callable[[], None]:
        def run() -> None:
            residency = ModelResidency(device="cpu", budget_bytes=budget)
            job = RenderJob(job_id=1, segments=segments, voices=voices, models=models, cache_dir=None,
                            generation=GenerationParams(max_new_tokens=8))
            run_job(job, residency)
            loads[name] = len(residency.loads)
        return run

    def script_order_one_slot() -> None:
        residency = ModelResidency(device="cpu", budget_bytes=1)
        for segment in segments:  # one job per segment: the order is the script's, whatever the models
            run_job(RenderJob(job_id=1, segments=[segment], voices=voices, models=models, cache_dir=None,
                              generation=GenerationParams(max_new_tokens=8)), residency)
        loads["script order"] = len(residency.loads)

    timings = alternate({"roomy": session_render(10**12, "roomy"), "grouped": session_render(1, "grouped"),
                         "script order": script_order_one_slot}, repeats)
    table.add("mixed cast of 3 models, 12 interleaved lines: one-model budget grouped / all resident",
              f"{timings['grouped'] / timings['roomy']:.2f}x",
              f"{loads['grouped']} loads vs {loads['roomy']}; {timings['grouped']:.1f} s vs {timings['roomy']:.1f} s")
    table.add("same, one-model budget in script order (a plain LRU) / grouped",
              f"{timings['script order'] / timings['grouped']:.2f}x",
              f"{loads['script order']} loads vs {loads['grouped']}; {timings['script order']:.1f} s")


def bench_cached_audio(table: Table, root: Path, checkpoint: Path) -> None:
    """Reopening a project: finding a 500-line render's audio in the cache, with no model loaded."""
    from studio.core.plan import plan_segments
    from studio.core.project import GenerationParams
    from studio.core.tags import parse_script
    from studio.core.voice import VoiceSpec
    from studio.session.pipeline import RenderJob, cached_results, run_job
    from studio.session.residency import ModelResidency

    script = "\n".join(f"Line number {i + 1} of the story." for i in range(500))
    segments = plan_segments(parse_script(script))
    voice = VoiceSpec.design("a calm narrator")
    job = RenderJob(job_id=1, segments=segments, voices={None: voice}, models={None: str(checkpoint)},
                    cache_dir=root / "cache", generation=GenerationParams(max_new_tokens=4))
    started = time.perf_counter()
    run_job(job, ModelResidency(device="cpu"))
    render = time.perf_counter() - started
    memo = root / "fingerprints.json"
    cached_results(job, device="cpu", fingerprint_memo=memo)  # the first lookup hashes the checkpoint once
    started = time.perf_counter()
    found = cached_results(job, device="cpu", fingerprint_memo=memo)
    lookup = time.perf_counter() - started
    table.add("reopening a rendered 500-line project: cache lookup / the render it replaces",
              f"{lookup / render:.3f}x", f"{len(found)} of 500 lines found in {lookup * 1000:.0f} ms, no model loaded")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and 10 minutes of audio")
    parser.add_argument("--device", default="cpu", help="device for the engine figures (default: cpu)")
    parser.add_argument("--out", help="also write the table as Markdown to this file")
    parser.add_argument("--full-size", action="store_true",
                        help="also measure a random-weight checkpoint at the published 1.7B size")
    parser.add_argument("--full-size-frames", type=int, metavar="N",
                        help="frames per full-size run (default: 32 on the CPU, 126 on a GPU)")
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "qtts-bench-cache",
                        help="where the full-size checkpoint is built and kept (default: %(default)s)")
    parser.add_argument("--decode-only", action="store_true",
                        help="only the fast-decode comparison at full size (bench/decode.py)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    if args.decode_only:
        from bench.decode import bench_fast_decode

        table = Table()
        print(f"machine: {machine_description()}", flush=True)
        started = time.perf_counter()
        bench_fast_decode(table, args.cache_dir, device=args.device, frames=args.full_size_frames,
                          repeats=1 if args.quick else 3)
        print(f"\ntotal {time.perf_counter() - started:.0f} s\n")
        print(table.markdown())
        if args.out:
            Path(args.out).write_text(f"machine: {machine_description()}\n\n{table.markdown()}\n", encoding="utf-8")
        return 0
    from studio.engine.tiny import build_tiny_checkpoint

    table = Table()
    print(f"machine: {machine_description()}", flush=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = build_tiny_checkpoint(Path(tmp) / "voice_design", model_type="voice_design")
        print("engine (tiny random-weight VoiceDesign checkpoint):", flush=True)
        bench_engine(table, checkpoint, repeats=3 if args.quick else 7, device=args.device)
        if args.full_size:
            print("engine at full size (published 1.7B dimensions, random weights):", flush=True)
            bench_full_size(table, args.cache_dir, device=args.device, frames=args.full_size_frames,
                            repeats=1 if args.quick else 3)
            # The loaded model (8 GB in float32) must not sit in memory under the UI figures.
            gc.collect()
            from bench.decode import bench_fast_decode

            print("fast decode at full size (reference, fast, compiled, int8):", flush=True)
            bench_fast_decode(table, args.cache_dir, device=args.device, frames=args.full_size_frames,
                              repeats=1 if args.quick else 3)
            gc.collect()
        print("render session (mixed cast, audio that stays):", flush=True)
        bench_mixed_cast(table, Path(tmp) / "cast", repeats=1 if args.quick else 3)
        bench_cached_audio(table, Path(tmp) / "reopen", checkpoint)
        print("user interface:", flush=True)
        bench_ui_stall(table, checkpoint)
        bench_waveform(table, minutes=10 if args.quick else 60)
        bench_editor_redraw(table, hours=1 if args.quick else 10)
        bench_long_script_editing(table, lines=10_000 if args.quick else 100_000)
        bench_open_project(table)
        from bench.books import bench_books

        print("books:", flush=True)
        bench_books(table)
    print(f"\ntotal {time.perf_counter() - started:.0f} s\n")
    print(table.markdown())
    if args.out:
        Path(args.out).write_text(f"machine: {machine_description()}\n\n{table.markdown()}\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
