"""The house reads top-down: no module imports a layer above its own (scripts/import_graph.py)."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "import_graph.py"


def load_graph_tool():
    spec = importlib.util.spec_from_file_location("import_graph", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_import_points_up():
    tool = load_graph_tool()
    edges = tool.graph()
    assert len(edges) > 30  # every module of src/loanapi was read
    assert tool.back_arrows(edges) == []


def test_a_back_arrow_is_found():
    tool = load_graph_tool()
    edges = tool.graph()
    edges["loanapi.db"] = {*edges["loanapi.db"], "loanapi.api.deps"}
    assert tool.back_arrows(edges) == ["loanapi.db (db) imports loanapi.api.deps (api)"]
