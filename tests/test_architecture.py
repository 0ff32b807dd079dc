"""The code's shape, checked from its own imports: no import cycles anywhere in studio or training.

import-linter (run by the test command) enforces the floors; this finds any cycle, at any depth, that
a contract does not name, e.g. two modules of one floor importing each other.
"""

from __future__ import annotations

import grimp


def _cycles(graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_there_are_no_import_cycles():
    graph = grimp.build_graph("studio", "training", cache_dir=None)
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_planted_cycle():
    # The check above is only worth something if it can fail: add an edge that closes a loop.
    graph = grimp.build_graph("studio", "training", cache_dir=None)
    graph.add_import(importer="studio.core.plan", imported="studio.core.voice")
    assert ["studio.core.plan", "studio.core.voice"] in _cycles(graph)


LONG_MODULE_LINES = 600
REASON = "Over 600 lines on purpose"


def _long_modules_without_a_reason(root):
    found = []
    for package in ("studio", "training"):
        for path in sorted((root / package).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            if text.count("\n") > LONG_MODULE_LINES and REASON not in "\n".join(text.splitlines()[:20]):
                found.append(str(path.relative_to(root)))
    return found


def test_every_module_over_600_lines_says_why_at_its_top(tmp_path):
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    assert _long_modules_without_a_reason(root) == []
    # And the check itself notices a long module that gives no reason.
    (tmp_path / "studio").mkdir()
    (tmp_path / "training").mkdir()
    (tmp_path / "studio" / "big.py").write_text('"""A module."""\n' + "x = 1\n" * 700)
    assert _long_modules_without_a_reason(tmp_path) == ["studio/big.py"]
