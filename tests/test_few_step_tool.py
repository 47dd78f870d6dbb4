"""tools/few_step.py end to end on a tiny run: it fits a grid per step count, distils, compares (the
students paired with the reference) and summarises; run again, it fits and trains nothing new;
tools/few_step_models.py puts its table beside others."""
import os
import sys

import forked
from helpers import ROOT, TINY
from sde_edge.tables import read_csv


def test_the_few_step_table_of_a_tiny_run_and_a_rerun_that_reuses_it(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = tmp_path / "run"
    trained = forked.run([sys.executable, "-m", "sde_edge.cli", "train", f"--config={TINY}", f"--workdir={run}",
                          "--config.training.n_iters=10", "--progress=false"], env=env, timeout=600)
    assert trained.returncode == 0, trained.stderr[-2000:]
    command = [sys.executable, str(ROOT / "tools" / "few_step.py"), f"--workdir={run}", f"--out={tmp_path / 'out'}",
               "--steps=2,4", "--n=8", "--decisive_steps=4", "--decisive_n=8", "--distill_from=8",
               "--round_steps=5", "--fit_n=8", "--fit_reference_steps=20", "--reference=ddpm@10",
               "--bridge=dpmpp_2m@6", "--bridge_n=16", "--generic=logsnr"]
    first = forked.run(command, env=env, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    assert {p.name for p in (run / "grids").glob("*.json")} == {"dpmpp_2m_2.json", "dpmpp_2m_4.json"}
    rows = read_csv(tmp_path / "out" / "all" / "results.csv")
    assert {(r["grid"], r["steps"]) for r in rows} == {("uniform", "10"), ("logsnr", "2"), ("logsnr", "4"),
                                                        ("fitted", "2"), ("fitted", "4"), ("distilled", "4"),
                                                        ("uniform", "6")}  # the last: the bridge
    assert all(r["fd_diff_se"] not in ("", None) for r in rows)  # every row paired with ddpm@10
    assert all(r["fd_diff_bridged_se"] not in ("", None) for r in rows)  # ... and bridged to it
    assert all(float(r["fd_vs_logsnr_se"]) > 0 for r in rows if r["grid"] == "fitted")  # and with the generic grid
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "| all | 8 | ddim (distilled) |" in summary and "| decisive | 8 | dpmpp_2m (fitted) |" in summary
    assert "| bridged |" in summary and summary.count(" | - |") == summary.count("| decisive |")  # no bridge there
    again = forked.run(command, env=env, timeout=600)
    assert again.returncode == 0 and "fit-grid" not in again.stdout, again.stdout[-2000:]
    assert "nothing to train" in again.stdout or "resumed from" in again.stdout or "already" in again.stdout
    models_command = [sys.executable, str(ROOT / "tools" / "few_step_models.py"), f"--tables={tmp_path / 'out'}",
                      f"--out={tmp_path / 'models'}"]
    wrong = forked.run(models_command, env=env, timeout=600)  # the default reference, ddpm@500, is not there
    assert wrong.returncode != 0 and "out: no ddpm@500 row in its comparison (--reference)" in wrong.stderr, \
        wrong.stderr[-2000:]
    models = forked.run(models_command + ["--reference=ddpm@10"], env=env, timeout=600)
    assert models.returncode == 0, models.stderr[-2000:]
    table = (tmp_path / "models" / "models.md").read_text()
    assert "| out | all | ddim (distilled) |" in table and "| out | decisive | dpmpp_2m (fitted) |" in table
    assert (tmp_path / "models" / "models.png").stat().st_size > 0
