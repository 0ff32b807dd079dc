"""bench/batch.py stays runnable, and its identity column is computed, not printed: a tiny run."""

from __future__ import annotations

from bench import batch


def test_the_batch_bench_runs_and_finds_each_segment_as_alone(capsys):
    assert batch.main(["--size", "tiny", "--segments", "3", "--frames", "4", "--batches", "2,3"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| batched decoder, batch")]
    assert [row.split("|")[1].strip() for row in rows] == [f"batched decoder, batch {n}" for n in (1, 2, 3)]
    assert all(row.rstrip(" |").endswith("yes") for row in rows)
