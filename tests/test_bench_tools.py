"""tools/: the benchmark, the solver-order measurement and the GPU check script (small settings)."""
import sys

import torch

import forked
from helpers import ROOT, TINY
from sde_edge.tables import read_csv


def test_bench_runs_without_touching_the_benchmarks_doc(tmp_path):
    config = tmp_path / "tiny_ramp.py"
    config.write_text(
        "from sde_edge.config import load_config\n\n\ndef get_config():\n"
        f"    config = load_config({str(TINY)!r})\n"
        "    config.diffusion.tau = 'linear_ramp'  # the SDE/ODE samplers need a continuous tau\n"
        "    return config\n"
    )
    readme = (ROOT / "docs" / "benchmarks.md").read_text()
    command = [sys.executable, str(ROOT / "tools" / "bench.py"), "--repeats=2", "--device=cpu", f"--config={config}",
               "--pipeline_images=40", "--batch=8", "--sampler_steps=5",
               "--tolerance=1e-3"]
    result = forked.run(command, timeout=600)
    assert result.returncode == 0, result.stderr
    for needle in ("edge / DDPM", "bluenoise", "overhead share", "dpmpp_2m", "ddpm, channels-last", "edm",
                   "likelihood / sampling", "| bf16 |",
                   "fused Adam", "open the prepared cache", "prepared, 2 threads"):
        assert needle in result.stdout, needle
    assert (ROOT / "docs" / "benchmarks.md").read_text() == readme


def test_solver_order_measures_every_case(tmp_path):
    command = [
        sys.executable,
        str(ROOT / "tools" / "solver_order.py"),
        "--steps=2,4,8",
        "--reference_steps=32",
        "--n=8",
        f"--out={tmp_path}",
    ]
    result = forked.run(command, timeout=600)
    assert result.returncode == 0, result.stderr
    rows = read_csv(tmp_path / "order.csv")
    assert len(rows) == 3 * 3 * 3 and all(0 < float(r["error"]) < 2 for r in rows)  # cases x samplers x K
    assert (tmp_path / "order.png").exists()


def test_gpu_check_parses_and_calls_only_what_exists():
    import re
    import subprocess

    import sde_edge.experiments.studies  # noqa: F401 (registers every study)
    from sde_edge.experiments.registry import STUDIES

    script = ROOT / "tools" / "gpu_check.sh"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True).returncode == 0
    text = script.read_text()
    assert re.findall(r"tools/experiments\.py (\S+)", text) == ['"$STUDY"'] * 2  # the workers, the report
    studies = set(re.findall(r"(\w+)\) SIZE=", text)) | set(re.findall(r"STUDY=\$\{STUDY:-(\w+)\}", text))
    assert studies == {"comparison64", "comparison"} and studies <= set(STUDIES)
    assert all(STUDIES[name].evaluates_in_shards for name in studies)  # its workers use --shard alone
    bench = (ROOT / "tools" / "bench.py").read_text()
    benches = set(re.search(r"BENCHES = \{(.*?)\}", bench, re.S)[1].replace('"', " ").replace(":", " ").split())
    for only in re.findall(r"--only ([\w,]+)", text):
        assert set(only.split(",")) <= benches, only
    for config in re.findall(r"--config (\S+)", text):
        assert (ROOT / config).exists(), config


def test_the_options_baseline_is_fp32_eager_whatever_the_config_turns_on(monkeypatch):
    """A paper-scale config turns bf16, compile, channels-last and fused Adam on; its 'fp32 eager' row
    must still be plain (an H100 lease once measured the config's own combination in every row)."""
    monkeypatch.syspath_prepend(str(ROOT / "tools"))
    import bench_training

    from sde_edge.config import load_config

    config = load_config(TINY)
    config.training.precision, config.model.channels_last, config.optim.fused = "bf16", True, True
    measured = []

    def fake_step(config, device, repeats, batch):
        measured.append((config.training.precision, config.model.channels_last, config.optim.fused,
                         config.training.compile))
        return 0.1

    monkeypatch.setattr(bench_training, "_step_seconds", fake_step)
    table, _ = bench_training.bench_options(config, torch.device("cpu"), 1)
    assert measured[0] == ("fp32", False, False, False)  # the baseline
    assert measured[-1] == ("bf16", True, True, False)  # the config's own combination, a row of its own
    assert "as configured: precision=bf16, channels_last=True, fused=True" in table


def test_forward_and_side_by_side_benchmarks_run(tmp_path):
    command = [sys.executable, str(ROOT / "tools" / "bench.py"), "--repeats=2", "--device=cpu", f"--config={TINY}",
               "--only=forward,side_by_side", "--batch=4", "--processes=1,2"]
    result = forked.run(command, timeout=600)
    assert result.returncode == 0, result.stderr
    for needle in ("| eager |", "| channels-last |", "| bf16 autocast |", "| 1 |", "| 2 |", "steps/s in all"):
        assert needle in result.stdout, needle
