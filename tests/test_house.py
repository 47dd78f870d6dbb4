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


def test_starting_a_command_imports_neither_torchvision_nor_scipy_integrate_nor_pyplot():
    """Every CLI start and test subprocess would pay for these imports (about 2 s, 1 s and 0.7 s on 2 cores)."""
    import subprocess
    import sys

    code = ("import sys, sde_edge.cli, sde_edge.train; "
            "print(sorted({'torchvision', 'scipy.integrate', 'matplotlib.pyplot'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stdout + result.stderr[-2000:]


def test_sample_grids_tile_like_torchvisions_make_grid():
    import torch
    from torchvision.utils import make_grid

    from sde_edge.figures import _grid_pixels

    for channels, count, nrow in ((1, 5, 2), (3, 4, 4), (3, 7, 3)):
        images = torch.rand(count, channels, 4, 6, generator=torch.Generator().manual_seed(count))
        expected = make_grid(images, nrow=nrow, padding=2, pad_value=1.0).mul(255).add(0.5).clamp(0, 255)
        expected = expected.to(torch.uint8).permute(1, 2, 0).numpy()
        ours = _grid_pixels(images, nrow)
        assert (ours == (expected[..., 0] if channels == 1 else expected)).all()
