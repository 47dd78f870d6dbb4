"""The sde-edge console script."""
import subprocess
import sys

from PIL import Image


def _sde_edge(*args):
    return subprocess.run([sys.executable, "-m", "sde_edge.cli", *args], capture_output=True, text=True, timeout=300)


def test_forward_writes_a_png(tmp_path):
    out = tmp_path / "figs" / "forward.png"
    result = _sde_edge("forward", f"--out={out}", "--tau=linear_ramp", "--t_phi=0.4")
    assert result.returncode == 0, result.stderr
    assert str(out) in result.stdout
    with Image.open(out) as image:
        assert image.width > 800 and image.height > 400


def test_unknown_subcommand_prints_usage():
    result = _sde_edge("frobnicate")
    assert result.returncode == 2
    assert "forward" in result.stderr


def test_bad_flag_value_is_a_clear_error(tmp_path):
    result = _sde_edge("forward", f"--out={tmp_path / 'x.png'}", "--t_phi=1.5")
    assert result.returncode != 0
    assert "diffusion.t_phi" in result.stderr
