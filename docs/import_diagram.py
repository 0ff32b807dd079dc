"""Print the floors of the code and how many imports go from each to the ones below (docs/ARCHITECTURE.md).

    .venv/bin/python docs/import_diagram.py
"""

from __future__ import annotations

from collections import Counter

import grimp

FLOORS = ["studio.cli", "studio.selftest", "studio.ui", "studio.session", "studio.engine", "studio.audio",
          "studio.core", "training"]


def floor_of(module: str) -> str | None:
    return next((f for f in FLOORS if module == f or module.startswith(f + ".")), None)


def main() -> None:
    graph = grimp.build_graph("studio", "training", cache_dir=None)
    edges: Counter = Counter()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            source, target = floor_of(module), floor_of(imported)
            if source and target and source != target:
                edges[(source, target)] += 1
    for source in FLOORS:
        targets = [f"{target} ({edges[(source, target)]})" for target in FLOORS if edges[(source, target)]]
        print(f"{source:16} -> {', '.join(targets) if targets else '(nothing of ours)'}")


if __name__ == "__main__":
    main()
