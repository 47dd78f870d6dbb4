"""Fitted time grids (sde_edge/sampling/fitted.py): on the mixture oracle a grid fitted for
dpmpp_2m at 6 steps beats every generic grid on held-out noise, and a kept grid is refused, by name,
for another model, process, sampler, option set, step count or start time."""
import json
import os
import sys

import pytest
import torch

import forked
from helpers import ROOT, TINY
from sde_edge.config import default_diffusion
from sde_edge.oracle import MixtureOracle, rectangle_images
from sde_edge.processes import build_sde
from sde_edge.sampling import sample
from sde_edge.sampling.fitted import (
    FittedGrid,
    calibration_states,
    fit_grid,
    load_fitted,
    perturbed_states,
    save_fitted,
)
from sde_edge.tables import read_csv


def _oracle(tau):
    sde = build_sde(default_diffusion(tau=tau))
    return MixtureOracle(rectangle_images(3), (0.5, 0.3, 0.2), sde), sde


def _rmse(oracle, sde, x_init, grid, steps, reference):
    result = sample("dpmpp_2m", oracle, sde, tuple(x_init.shape), steps=steps, x_init=x_init, grid=grid)
    return float((result.samples - reference).double().pow(2).mean().sqrt())


@pytest.mark.parametrize("tau", ["linear_ramp", "linear"])
def test_a_grid_fitted_for_dpmpp_2m_beats_the_generic_grids_on_held_out_noise(tau):
    oracle, sde = _oracle(tau)
    shape = (1024, 1, 8, 8)
    calibration = calibration_states(sde, shape, 0, "test/calibration")
    held_out = calibration_states(sde, shape, 0, "test/held-out")
    times, report = fit_grid(oracle, sde, calibration, sampler="dpmpp_2m", steps=6)
    assert len(times) == 7 and times[0] == 1.0 and times[-1] == 0.0
    # the error measured here, independently of the fit's own bookkeeping: the 1,000-step solution
    reference = sample("dpmpp_2m", oracle, sde, shape, steps=1000, x_init=held_out).samples
    fitted = _rmse(oracle, sde, held_out, FittedGrid(times, "dpmpp_2m", 6), 6, reference)
    for name in ("uniform", "logsnr", "edm"):
        generic = _rmse(oracle, sde, held_out, name, 6, reference)
        assert fitted < generic, (name, fitted, generic, times)
    assert report["calibration"]["fitted"] <= min(v for k, v in report["calibration"].items() if k != "fitted")


def test_a_grid_fitted_from_t0_for_sdedit_beats_uniform_from_t0():
    oracle, sde = _oracle("linear")  # t0 = 0.7 lies above the jump at t_phi = 0.5
    images = rectangle_images(3).repeat(342, 1, 1, 1)[:1024]
    calibration = perturbed_states(sde, images, 0.7, 0, "test/calibration")
    held_out = perturbed_states(sde, images, 0.7, 0, "test/held-out")
    times, _ = fit_grid(oracle, sde, calibration, sampler="dpmpp_2m", steps=4, t_start=0.7)
    assert times[0] == 0.7 and times[-1] == 0.0 and len(times) == 5
    reference = sample("dpmpp_2m", oracle, sde, tuple(images.shape), steps=1000, x_init=held_out, t_start=0.7).samples
    result = sample("dpmpp_2m", oracle, sde, tuple(images.shape), steps=4, x_init=held_out, t_start=0.7,
                    grid=FittedGrid(times, "dpmpp_2m", 4))
    fitted = float((result.samples - reference).double().pow(2).mean().sqrt())
    uniform = sample("dpmpp_2m", oracle, sde, tuple(images.shape), steps=4, x_init=held_out, t_start=0.7).samples
    assert fitted < float((uniform - reference).double().pow(2).mean().sqrt()), times


def test_a_step_may_end_exactly_at_the_jump():
    oracle, sde = _oracle("linear")
    t_phi = sde.discontinuities[0]
    calibration = calibration_states(sde, (256, 1, 8, 8), 0, "test/calibration")
    times, _ = fit_grid(oracle, sde, calibration, sampler="dpmpp_2m", steps=3, sweeps=1, reference_steps=200)
    assert all(t_end < t_start for t_start, t_end in zip(times, times[1:]))
    # the candidates hold t_phi itself: moving a time onto it is possible (the fit found it or better)
    from sde_edge.sampling.fitted import _candidates

    assert t_phi in _candidates(1.0, 0.0, sde, 16)


def test_the_adaptive_ode_is_refused_and_a_deterministic_sampler_is_not_coupled():
    oracle, sde = _oracle("linear_ramp")
    x = calibration_states(sde, (16, 1, 8, 8), 0, "test")
    assert fit_grid(oracle, sde, x, sampler="ddim", steps=3, reference_steps=20, sweeps=1)[1]["noise"] == "none"
    with pytest.raises(ValueError, match="ode chooses its own steps"):
        fit_grid(oracle, sde, x, sampler="ode", steps=4)


def test_explicit_grids_are_checked():
    oracle, sde = _oracle("linear_ramp")
    shape = (4, 1, 8, 8)
    with pytest.raises(ValueError, match="3 steps need 4"):
        sample("ddim", oracle, sde, shape, steps=3, grid=torch.tensor([1.0, 0.5, 0.0]))
    with pytest.raises(ValueError, match="runs from t = 0.9"):
        sample("ddim", oracle, sde, shape, steps=2, grid=torch.tensor([0.9, 0.5, 0.0]))
    with pytest.raises(ValueError, match="decrease strictly"):
        sample("ddim", oracle, sde, shape, steps=3, grid=torch.tensor([1.0, 0.3, 0.5, 0.0]))


def test_a_kept_grid_is_refused_for_anything_it_was_not_fitted_for(tmp_path):
    fitted_for = {"model": "a" * 64, "process": "p1", "t_start": 1.0}
    options = {"eta": 0.0}
    save_fitted(tmp_path, (1.0, 0.5, 0.1, 0.0), sampler="ddim", steps=3, options=options, fitted_for=fitted_for,
                report={})
    grid = load_fitted(tmp_path, sampler="ddim", steps=3, options=options, fitted_for=fitted_for)
    assert grid.times == (1.0, 0.5, 0.1, 0.0)
    cases = [
        ({"steps": 4}, "no grid fitted for sampler 'ddim' at 4 steps"),
        ({"sampler": "dpmpp_2m"}, "no grid fitted for sampler 'dpmpp_2m'"),
        ({"options": {"eta": 0.5}}, "fitted for options"),
        ({"fitted_for": {**fitted_for, "model": "b" * 64}}, "fitted for model"),
        ({"fitted_for": {**fitted_for, "process": "p2"}}, "fitted for process"),
        ({"fitted_for": {**fitted_for, "t_start": 0.5}}, "fitted for t_start"),
    ]
    for change, message in cases:
        call = {"sampler": "ddim", "steps": 3, "options": options, "fitted_for": fitted_for, **change}
        with pytest.raises(ValueError, match=message):
            load_fitted(tmp_path, **call)
    # a grid file copied under another name is refused by what it says inside
    (tmp_path / "grids" / "ddim_3.json").rename(tmp_path / "grids" / "ddim_4.json")
    with pytest.raises(ValueError, match="fitted for steps = 3"):
        load_fitted(tmp_path, sampler="ddim", steps=4, options=options, fitted_for=fitted_for)
    (tmp_path / "grids" / "ddim_4.json").write_text("{not json")
    with pytest.raises(ValueError, match="is not a fitted grid"):
        load_fitted(tmp_path, sampler="ddim", steps=4, options=options, fitted_for=fitted_for)


def _sde_edge(*args):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return forked.run([sys.executable, "-m", "sde_edge.cli", *args], env=env, timeout=600)


def test_fit_grid_then_sample_with_it_and_a_retrained_model_is_refused(tmp_path):
    workdir = tmp_path / "run"
    common = [f"--config={TINY}", f"--workdir={workdir}", "--config.diffusion.tau=linear_ramp", "--progress=false"]
    assert _sde_edge("train", *common, "--config.training.n_iters=10").returncode == 0
    fitted = _sde_edge("fit-grid", f"--workdir={workdir}", "--sampler=dpmpp_2m", "--steps=4", "--n=16",
                       "--reference_steps=50")
    assert fitted.returncode == 0, fitted.stderr[-2000:]
    record = json.loads((workdir / "grids" / "dpmpp_2m_4.json").read_text())
    assert len(record["times"]) == 5 and set(record["report"]["held_out"]) >= {"uniform", "fitted"}
    out = tmp_path / "s.npz"
    drawn = _sde_edge("sample", f"--workdir={workdir}", "--sampler=dpmpp_2m", "--steps=4", "--grid=fitted", "--n=4",
                      f"--out={out}")
    assert drawn.returncode == 0 and "fitted grid" in drawn.stdout, drawn.stderr[-2000:]
    other_k = _sde_edge("sample", f"--workdir={workdir}", "--sampler=dpmpp_2m", "--steps=5", "--grid=fitted",
                        "--n=4", f"--out={out}")
    assert other_k.returncode == 2 and "no grid fitted for sampler 'dpmpp_2m' at 5 steps" in other_k.stderr
    guided = _sde_edge("sdedit", f"--workdir={workdir}", "--sampler=dpmpp_2m", "--steps=4", "--grid=fitted",
                       "--t0=0.5", "--n=2", f"--out={tmp_path / 'e.npz'}")
    assert guided.returncode == 2 and "fitted for t_start = 1.0" in guided.stderr, guided.stderr[-2000:]
    from_t0 = _sde_edge("fit-grid", f"--workdir={workdir}", "--sampler=dpmpp_2m", "--steps=4", "--n=16",
                        "--reference_steps=50", "--t0=0.5")  # overwrites the grid from the prior
    assert from_t0.returncode == 0 and "sdedit --t0 0.5" in from_t0.stdout, from_t0.stderr[-2000:]
    guided = _sde_edge("sdedit", f"--workdir={workdir}", "--sampler=dpmpp_2m", "--steps=4", "--grid=fitted",
                       "--t0=0.5", "--n=2", f"--out={tmp_path / 'e.npz'}")
    assert guided.returncode == 0, guided.stderr[-2000:]
    drawn = _sde_edge("sample", f"--workdir={workdir}", "--sampler=dpmpp_2m", "--steps=4", "--grid=fitted", "--n=4",
                      f"--out={out}")
    assert drawn.returncode == 2 and "fitted for t_start = 0.5" in drawn.stderr, drawn.stderr[-2000:]
    assert _sde_edge("fit-grid", f"--workdir={workdir}", "--sampler=dpmpp_2m", "--steps=4", "--n=16",
                     "--reference_steps=50").returncode == 0  # back to the prior's grid for what follows
    compared = forked.run([sys.executable, str(ROOT / "tools" / "compare_samplers.py"), f"--workdir={workdir}",
                           "--samplers=dpmpp_2m,ddim", "--steps=4", "--grids=uniform,fitted", "--n=8",
                           "--features=classifier", f"--out={tmp_path / 'cmp'}"], timeout=600)
    assert compared.returncode == 0, compared.stderr[-2000:]
    rows = {(r["sampler"], r["grid"]): r for r in read_csv(tmp_path / "cmp" / "results.csv")}
    fitted_row = rows[("dpmpp_2m", "fitted")]
    assert float(fitted_row["fd"]) > 0 and not fitted_row.get("skipped")
    assert float(fitted_row["fd_vs_uniform_se"]) > 0  # the grid's effect, paired with the uniform grid's samples
    assert "no grid fitted for sampler 'ddim' at 4 steps" in rows[("ddim", "fitted")]["skipped"]
    judged = [sys.executable, str(ROOT / "tools" / "compare_samplers.py"), f"--workdir={workdir}",
              "--samplers=dpmpp_2m", "--steps=4", "--n=8", "--features=classifier", f"--out={tmp_path / 'cmp'}"]
    on_train = forked.run(judged + ["--split=train"], timeout=600)  # the same --out: its cached rows are test's
    assert on_train.returncode == 0, on_train.stderr[-2000:]
    train_row = next(r for r in read_csv(tmp_path / "cmp" / "results.csv") if r["grid"] == "uniform")
    assert float(train_row["fd"]) != float(rows[("dpmpp_2m", "uniform")]["fd"])  # other images, not the cached row
    no_val = forked.run(judged + ["--split=val"], timeout=600)
    assert no_val.returncode != 0 and "--split val: split 'val' needs data.validation_fraction" in no_val.stderr
    coupled = forked.run(judged + ["--samplers=dpmpp_2m_sde,pc", "--couple", "--reference=ddpm@8",
                                   f"--out={tmp_path / 'coupled'}"], timeout=600)
    assert coupled.returncode == 0, coupled.stderr[-2000:]
    coupled_rows = {r["sampler"]: r for r in read_csv(tmp_path / "coupled" / "results.csv")}
    assert float(coupled_rows["dpmpp_2m_sde"]["fd_diff_se"]) > 0  # paired with ddpm@8 on its path
    assert coupled_rows["pc"]["skipped"].startswith("not coupled: this sampler draws noise that is not a time step's")
    uncoupled = forked.run(judged + ["--couple"], timeout=600)
    assert uncoupled.returncode != 0 and "--couple needs --workdir and --reference" in uncoupled.stderr
    assert _sde_edge("train", *common, "--config.training.n_iters=12").returncode == 0  # new weights
    stale = _sde_edge("sample", f"--workdir={workdir}", "--sampler=dpmpp_2m", "--steps=4", "--grid=fitted", "--n=4",
                      f"--out={out}")
    assert stale.returncode == 2 and "fitted for model" in stale.stderr.strip().splitlines()[-1]
