"""tools/: the sampler comparison and the benchmark run end to end (small settings)."""
import csv
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_compare_samplers_on_the_oracle(tmp_path):
    command = [sys.executable, str(ROOT / "tools" / "compare_samplers.py"), "--oracle", "--samplers=ddpm,heun,torchsde:euler,ode",
               "--steps=5,20", "--n=60", f"--out={tmp_path}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["sampler"] for row in rows} == {"ddpm", "heun", "torchsde:euler", "ode"}
    assert len(rows) == 3 * 2 + 4  # ode sweeps tolerances instead of steps
    assert all(float(row["near_mode"]) >= 0 and int(row["nfe"]) > 0 for row in rows)
    heun_20 = next(row for row in rows if row["sampler"] == "heun" and row["steps"] == "20")
    assert int(heun_20["nfe"]) == 41 and float(heun_20["near_mode"]) > 0.95
    for name in ("results.md", "quality_vs_nfe.png", "samples_ddpm.png", "samples_torchsde_euler.png"):
        assert (tmp_path / name).exists(), name


def test_compare_samplers_needs_a_model():
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "compare_samplers.py")], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "--oracle" in result.stderr


def test_bench_runs_without_touching_the_readme(tmp_path):
    config = tmp_path / "tiny_ramp.py"
    config.write_text(
        "from sde_edge.config import load_config\n\n\ndef get_config():\n"
        f"    config = load_config({str(ROOT / 'tests' / 'configs' / 'tiny.py')!r})\n"
        "    config.diffusion.tau = 'linear_ramp'  # the SDE/ODE samplers need a continuous tau\n"
        "    return config\n"
    )
    readme = (ROOT / "README.md").read_text()
    command = [sys.executable, str(ROOT / "tools" / "bench.py"), "--repeats=2", "--write_readme=false", "--device=cpu",
               f"--config={config}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "edge / isotropic" in result.stdout and "overhead share" in result.stdout and "likelihood / sampling" in result.stdout
    assert (ROOT / "README.md").read_text() == readme
