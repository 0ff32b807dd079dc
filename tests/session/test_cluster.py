"""Rendering on a Ray cluster (issue #21), on a real two-node Ray cluster started on this machine.

The nodes are two raylets on loopback (Ray's own `cluster_utils.Cluster`), each with room for one worker;
the workers are real Ray actor processes loading the tiny checkpoints. A 20-line mixed project (two
voices on two models, pauses) renders on the cluster while one worker is killed with SIGKILL mid-render;
the result must equal the local render byte for byte, every segment must be in the driver's cache, and a
rerun must take everything from it.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import ray

from studio.core.plan import plan_segments
from studio.core.project import GenerationParams
from studio.core.tags import parse_script
from studio.core.voice import VoiceSpec
from studio.engine.render import DONE
from studio.session.cluster import ClusterOptions, run_job_on_cluster
from studio.session.pipeline import JobEvents, RenderJob, run_job
from studio.session.residency import ModelResidency

pytestmark = pytest.mark.slow


def _worker_processes(*, rendering: bool) -> list[int]:
    """PIDs of the cluster's worker processes, from their titles: Ray names a worker "ray::RenderWorker",
    and "ray::RenderWorker.render" while it runs a render task."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            title = (proc / "cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if title == b"ray::RenderWorker.render" or (not rendering and title == b"ray::RenderWorker"):
            found.append(int(proc.name))
    return found


def _script() -> str:
    lines = []
    for n in range(1, 21):
        voice = "Narrator" if n % 3 else "Host"
        pause = "[pause 0.2s]" if n % 7 == 0 else ""
        lines.append(f"[voice: {voice}]{pause}Line {n} of the story, " + "and a bit more " * (n % 4) + "here.")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    made = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    made.add_node(num_cpus=2)
    ray.init(address=made.address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield made
    ray.shutdown()
    made.shutdown()


def _job(tiny_checkpoints, cache_dir):
    voices = {
        "Narrator": VoiceSpec("design", description="A calm, low narrator",
                              model=str(tiny_checkpoints["voice_design"])),
        "Host": VoiceSpec("preset", speaker="ryan", model=str(tiny_checkpoints["custom_voice"])),
    }
    return RenderJob(job_id=1, segments=plan_segments(parse_script(_script())), voices=voices,
                     models={name: voice.model for name, voice in voices.items()}, cache_dir=cache_dir,
                     generation=GenerationParams(max_new_tokens=10), batch=0)


def test_a_killed_worker_loses_nothing_and_the_audio_is_the_local_render(cluster, tiny_checkpoints, tmp_path):
    local = run_job(_job(tiny_checkpoints, tmp_path / "local-cache"), ModelResidency(device="cpu", cpu_threads=2))
    count = len(local.results)  # 20 lines: 20 speech segments and the pauses of two of them (lines 7 and 14)
    assert local.error is None and [r.state for r in local.results] == [DONE] * count == [DONE] * 22

    workers: list = []
    killed: list[int] = []
    finished: list = []

    def on_finished(result) -> None:
        finished.append(result)
        if result.segment.kind == "speech" and not killed:
            # A worker in the middle of a render task (its segments in hand): killed outright.
            busy = _worker_processes(rendering=True)
            if busy:
                os.kill(busy[0], signal.SIGKILL)
                killed.append(busy[0])

    options = ClusterOptions(cpu_threads=2, device="cpu")
    job = _job(tiny_checkpoints, tmp_path / "cluster-cache")
    said: list[str] = []
    outcome = run_job_on_cluster(job, options, JobEvents(segment_finished=on_finished, model_loading=said.append),
                                 on_workers=workers.extend)
    assert killed, "a worker was killed in the middle of a task"
    # It had segments in hand, and they went to another worker.
    [stopped] = [line for line in said if line.startswith("a cluster worker stopped")]  # one kill, one loss
    assert "Actor" in stopped  # Ray's ActorDiedError or ActorUnavailableError (restarting), as it happens
    assert int(stopped.rsplit("; ", 1)[1].split()[0]) >= 1
    assert outcome.error is None and not outcome.cancelled
    assert [r.state for r in outcome.results] == [DONE] * count
    assert len(workers) == 4  # two per model, each pool on both nodes
    for mine, theirs in zip(outcome.results, local.results, strict=True):
        assert mine.segment.index == theirs.segment.index
        np.testing.assert_array_equal(mine.samples, theirs.samples)
    assert sorted(r.segment.index for r in finished) == list(range(count))

    again = run_job_on_cluster(_job(tiny_checkpoints, tmp_path / "cluster-cache"), options)
    speech = [r for r in again.results if r.segment.kind == "speech"]
    assert speech and all(r.cached for r in speech)  # resumed from the driver's cache: nothing rendered


def test_cancelling_stops_the_cluster_render(cluster, tiny_checkpoints, tmp_path):
    job = _job(tiny_checkpoints, tmp_path / "cache")
    done = threading.Event()

    def on_finished(result) -> None:
        if result.segment.kind == "speech":
            job.cancel.set()
            done.set()

    outcome = run_job_on_cluster(job, ClusterOptions(cpu_threads=2, device="cpu"),
                                 JobEvents(segment_finished=on_finished))
    assert done.is_set() and outcome.cancelled
    assert len(outcome.results) < len(job.segments)


def test_segments_whose_workers_keep_dying_are_reported_failed_with_the_reason(cluster, tiny_checkpoints, tmp_path):
    job = _job(tiny_checkpoints, tmp_path / "cache")
    job.segments = [s for s in job.segments if job.model_for(s) == job.models["Narrator"]][:6]
    stop = threading.Event()

    def kill_every_worker_once_it_renders() -> None:
        while not stop.is_set():
            for pid in _worker_processes(rendering=True):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)

    killer = threading.Thread(target=kill_every_worker_once_it_renders, daemon=True)
    killer.start()
    try:
        outcome = run_job_on_cluster(job, ClusterOptions(cpu_threads=2, device="cpu"))
    finally:
        stop.set()
        killer.join()
    assert outcome.error is None and len(outcome.results) == len(job.segments)
    assert all(r.state != DONE for r in outcome.results if r.segment.kind == "speech")
    for result in outcome.results:
        if result.segment.kind == "speech":
            assert ("failed on the cluster 3 times" in result.error
                    or "no cluster worker is left to render it" in result.error), result.error


def test_a_node_that_leaves_mid_render_loses_nothing(tiny_checkpoints, tmp_path):
    """A cluster of its own (the node is gone afterwards): the second node is removed while its worker holds
    segments; they are rendered by the worker left, and the audio is still the local render's."""
    from ray.cluster_utils import Cluster

    local = run_job(_job(tiny_checkpoints, None), ModelResidency(device="cpu", cpu_threads=2))
    ray.shutdown()  # the module's cluster, if a test before this one started it
    made = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    leaving = made.add_node(num_cpus=2)
    ray.init(address=made.address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    said: list[str] = []
    removed: list[bool] = []

    def on_finished(result) -> None:
        if result.segment.kind == "speech" and not removed:
            made.remove_node(leaving, allow_graceful=False)
            removed.append(True)

    try:
        outcome = run_job_on_cluster(_job(tiny_checkpoints, tmp_path / "cache"), ClusterOptions(cpu_threads=2,
                                     device="cpu"), JobEvents(segment_finished=on_finished, model_loading=said.append))
    finally:
        ray.shutdown()
        made.shutdown()
    assert removed
    assert outcome.error is None and [r.state for r in outcome.results] == [DONE] * len(local.results)
    for mine, theirs in zip(outcome.results, local.results, strict=True):
        np.testing.assert_array_equal(mine.samples, theirs.samples)
    assert any(line.startswith("a cluster worker stopped") for line in said)


def test_choosing_another_cluster_leaves_the_one_in_use(tiny_checkpoints, tmp_path, monkeypatch):
    """The window keeps one process for many renders: a new address in Render Settings must reach Ray, not
    be ignored because Ray is already connected. Ray's own init and shutdown run and are watched; only the
    connection to the unreachable address fails at once instead of after Ray's minutes of retrying."""
    calls = []
    real_init, real_shutdown = ray.init, ray.shutdown

    def init(**kwargs):
        calls.append(("init", kwargs.get("address")))
        if kwargs.get("address") == "127.0.0.1:1":
            raise ConnectionError("could not reach the GCS at 127.0.0.1:1")
        return real_init(**kwargs)

    monkeypatch.setattr(ray, "init", init)
    monkeypatch.setattr(ray, "shutdown", lambda: calls.append(("shutdown",)) or real_shutdown())
    real_shutdown()
    job = _job(tiny_checkpoints, None)
    job.segments = job.segments[:1]
    try:
        first = run_job_on_cluster(job, ClusterOptions(address="auto", cpu_threads=2, device="cpu"))
        assert first.error is None and [r.state for r in first.results] == [DONE]
        again = run_job_on_cluster(job, ClusterOptions(address="auto", cpu_threads=2, device="cpu"))
        assert again.error is None
        assert calls == [("init", None)]  # the same choice: connected once
        elsewhere = run_job_on_cluster(job, ClusterOptions(address="127.0.0.1:1", cpu_threads=2, device="cpu"))
    finally:
        real_shutdown()
    assert calls[1:] == [("shutdown",), ("init", "127.0.0.1:1")]
    assert elsewhere.error == "Ray cluster at 127.0.0.1:1: ConnectionError: could not reach the GCS at 127.0.0.1:1"
