# ruff: noqa: T201  (a command-line tool: it prints)
"""The import graph of loanapi's own modules, by layer; fails on an import that points up.

    .venv/bin/python scripts/import_graph.py          # the layers, each module and its imports

The house reads top-down: api -> services -> records and models -> db -> foundations. A module
may import its own layer or any layer below; an import of a higher layer is a back arrow.
"""

import ast
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# Highest first. A module belongs to the first layer with a matching prefix.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "api",
        (
            "loanapi.api",
            "loanapi.app",
            "loanapi.cli",
            "loanapi.middleware",
            "loanapi.observability",
            "loanapi.openapi",
            "loanapi.migrate",
            "loanapi.jobs",  # the scheduled jobs, run by the worker or the server
            "loanapi.demo",  # drives the API in process
            "loanapi.models",  # imports every table for Alembic and the tests
        ),
    ),
    (
        "services",
        (
            "loanapi.loans.service",
            "loanapi.loans.servicing",
            "loanapi.loans.close_of_business",
            "loanapi.loans.portfolio",
            "loanapi.loans.workflow",
            "loanapi.users.service",
            # the outbox (written by every service that changes something), the feed, the
            # endpoints and their deliveries
            "loanapi.webhooks.outbox",
            "loanapi.webhooks.feed",
            "loanapi.webhooks.service",
            "loanapi.webhooks.delivery",
            "loanapi.webhooks.queue",  # the deliveries table as the worker's queue
            "loanapi.webhooks.sender",  # the HTTP client of the deliveries
            "loanapi.webhooks.urls",
            "loanapi.idempotency",
            "loanapi.throttle",
            "loanapi.security",
        ),
    ),
    (
        "records and models",
        (
            "loanapi.loans.records",
            "loanapi.users.records",
            "loanapi.loans",
            "loanapi.users",
            "loanapi.webhooks",
        ),
    ),
    ("db", ("loanapi.db",)),
    (
        "foundations",
        (
            "loanapi.orm",
            "loanapi.clock",
            # Pure money maths (no I/O): the models use its enums, the services its rules.
            "loanapi.loans.pricing",
            "loanapi.loans.ledger",
            "loanapi.sql",
            "loanapi.config",
            "loanapi.errors",
            "loanapi.pagination",
            "loanapi",
        ),
    ),
]


def layer_of(module: str) -> int:
    for index, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    raise ValueError(f"{module} is in no layer")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, modules: set[str]) -> set[str]:
    """The loanapi modules a file imports (`from loanapi.loans import service` is the service)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("loanapi"):
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("loanapi"))
    return found


def graph() -> dict[str, set[str]]:
    paths = sorted((SRC / "loanapi").rglob("*.py"))
    modules = {module_name(path) for path in paths}
    return {module_name(path): imports(path, modules) - {module_name(path)} for path in paths}


def back_arrows(edges: dict[str, set[str]]) -> list[str]:
    """Every import of a higher layer (a lower index) than the importer's."""
    return [
        f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
        for module, targets in edges.items()
        for target in sorted(targets)
        if layer_of(target) < layer_of(module)
    ]


def main() -> int:
    edges = graph()
    for index, (name, _) in enumerate(LAYERS):
        print(f"## {name}")
        for module in sorted(m for m in edges if layer_of(m) == index):
            print(f"  {module} -> {', '.join(sorted(edges[module])) or '(nothing of ours)'}")
    wrong = back_arrows(edges)
    print("\n".join(["", "back arrows:", *wrong]) if wrong else "\nno back arrows")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
