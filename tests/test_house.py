"""The house rules a contributor relies on: small modules, the math core below the config layer."""
import ast

from helpers import ROOT

PACKAGE = ROOT / "sde_edge"


def _imports(path):
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_no_module_of_the_package_is_over_300_lines():
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 300}
    assert not long, long


def test_the_math_core_imports_nothing_from_the_config_layer():
    for module in ("sde.py", "baselines.py", "process_registry.py", "score.py", "losses.py"):
        assert "sde_edge.config" not in _imports(PACKAGE / module), module
