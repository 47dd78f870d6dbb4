"""tools/compare_samplers.py end to end (small settings), its paired errors and its resumption."""
import json
import sys

import forked
from helpers import ROOT, TINY
from sde_edge.tables import read_csv


def test_compare_samplers_on_the_oracle_sweeps_grids_and_skips_with_reasons(tmp_path):
    command = [sys.executable, str(ROOT / "tools" / "compare_samplers.py"), "--oracle", "--tau=linear",
               "--samplers=ddpm,dpmpp_2m,heun,torchsde:euler,ode", "--steps=5,20", "--grids=uniform,edm", "--n=60",
               f"--out={tmp_path}"]
    result = forked.run(command, timeout=600)
    assert result.returncode == 0, result.stderr
    rows = read_csv(tmp_path / "results.csv")
    ran = [r for r in rows if not r.get("skipped")]
    assert {(r["sampler"], r["grid"]) for r in ran} == {("ddpm", "uniform"), ("ddpm", "edm"), ("dpmpp_2m", "uniform"),
                                                         ("dpmpp_2m", "edm")}
    assert all(float(r["near_mode"]) > 0.9 and int(r["nfe"]) > 0 for r in ran)
    skipped = {r["sampler"]: r["skipped"] for r in rows if r.get("skipped")}
    assert set(skipped) == {"heun", "torchsde:euler", "ode"}
    assert "sigma jumps at t = (0.5,)" in skipped["heun"] and "linear_ramp" in skipped["heun"]  # the reason in full
    for name in ("results.md", "quality_vs_nfe.png", "samples_ddpm_edm.png", "nfe_to_match_ddpm.json"):
        assert (tmp_path / name).exists(), name


def test_compare_samplers_on_a_trained_run_uses_the_metrics(tmp_path):
    workdir = tmp_path / "run"
    trained = forked.run(
        [
            sys.executable,
            "-m",
            "sde_edge.cli",
            "train",
            f"--config={TINY}",
            f"--workdir={workdir}",
            "--config.training.n_iters=5",
            "--progress=false",
        ],
        timeout=600,
    )
    assert trained.returncode == 0, trained.stderr
    command = [
        sys.executable,
        str(ROOT / "tools" / "compare_samplers.py"),
        f"--workdir={workdir}",
        "--samplers=ddpm,ddim",
        "--steps=2,4",
        "--reference=ddpm@6",
        "--n=20",
        "--features=classifier",
        f"--out={tmp_path / 'cmp'}",
    ]
    result = forked.run(command, timeout=600)
    assert result.returncode == 0, result.stderr
    rows = read_csv(tmp_path / "cmp" / "results.csv")
    assert len(rows) == 5 and all(float(r["fd"]) > 0 for r in rows)
    assert float(rows[0]["fd_diff"]) == 0 and float(rows[0]["fd_diff_se"]) == 0  # the reference against itself
    assert all(float(r["fd_diff_se"]) > 0 for r in rows[1:])
    assert [(r["sampler"], r["steps"]) for r in rows][0] == ("ddpm", "6")  # the reference, run once
    assert set(json.loads((tmp_path / "cmp" / "nfe_to_match_ddpm.json").read_text())) == {
        "ddpm (uniform)",
        "ddim (uniform)",
    }
    resolved = json.loads((tmp_path / "cmp" / "nfe_to_match_paired.json").read_text())
    assert set(resolved) == {"ddpm (uniform)", "ddim (uniform)"} and resolved["ddpm (uniform)"] <= 6  # the reference
    # the target from an existing eval-samples report instead of a run: ddim within 10% of a huge FD at once
    report = tmp_path / "metrics.json"
    from sde_edge.metrics.features import ClassifierFeatures  # the label the comparison's classifier features carry
    label = ClassifierFeatures("digits", 8, 1, progress=False).label
    report.write_text(
        json.dumps({"sampler": "ddpm", "steps": 500, "nfe": 500, "fd": 1e6, "n": 1000, "features": label})
    )
    command = command[:3] + ["--samplers=ddim", "--steps=2", f"--reference_report={report}", "--n=20",
                             "--features=classifier", f"--out={tmp_path / 'cmp2'}"]
    result = forked.run(command, timeout=600)
    assert result.returncode == 0, result.stderr
    rows = read_csv(tmp_path / "cmp2" / "results.csv")
    assert [(r["sampler"], r["steps"]) for r in rows] == [("ddpm", "500"), ("ddim", "2")] and "metrics.json" in rows[0][
        "note"
    ]
    assert json.loads((tmp_path / "cmp2" / "nfe_to_match_ddpm.json").read_text())["ddim (uniform)"] == 2
    # bridged through ddim@8: every row's difference to ddpm@6 is the paired one to the bridge plus the large pair's
    command = command[:3] + ["--samplers=ddim", "--steps=2", "--reference=ddpm@6", "--bridge=ddim@8", "--bridge_n=60",
                             "--n=20", "--features=classifier", f"--out={tmp_path / 'cmp3'}"]
    result = forked.run(command, timeout=600)
    assert result.returncode == 0, result.stderr
    rows = {(r["sampler"], r["steps"]): r for r in read_csv(tmp_path / "cmp3" / "results.csv")}
    assert set(rows) == {("ddpm", "6"), ("ddim", "2"), ("ddim", "8")}
    term = float(rows["ddim", "8"]["fd_diff_bridged"])  # the bridge against itself: the large pair's term alone
    assert all(float(r["fd_diff_bridged_se"]) > 0 for r in rows.values()) and term != 0
    assert set(json.loads((tmp_path / "cmp3" / "nfe_to_match_bridged.json").read_text())) == {
        "ddpm (uniform)", "ddim (uniform)"}
    refused = forked.run(command[:3] + ["--bridge=ddim@8", f"--out={tmp_path / 'cmp4'}"], timeout=600)
    assert refused.returncode != 0 and "--bridge needs --workdir and --reference" in refused.stderr


def test_compare_samplers_replots_from_its_csv_with_the_paired_panel_only_where_there_are_pairs(tmp_path):
    from PIL import Image

    from sde_edge.experiments.nfe_plot import plot_quality_vs_nfe
    from sde_edge.tables import write_csv

    rows = [{"sampler": "ddpm", "grid": "uniform", "steps": 500, "nfe": 500, "fd": 3.2, "fd_stderr": 0.7,
             "fd_diff": 0.0, "fd_diff_se": 0.0}]
    rows += [{"sampler": s, "grid": g, "steps": k, "nfe": k, "fd": 3.2 + 40 / k, "fd_stderr": 0.8,
              "fd_diff": 40 / k, "fd_diff_se": 1.2} for s in ("ddim", "dpmpp_2m") for g in ("uniform", "logsnr")
             for k in (5, 10, 20)]
    rows.append({"sampler": "heun", "grid": "uniform", "steps": 5, "skipped": "sigma jumps"})  # empty cells
    widths = {}
    for name, keep in (("paired", None), ("unpaired", ("sampler", "grid", "steps", "nfe", "fd", "fd_stderr"))):
        path = write_csv([{k: v for k, v in r.items() if keep is None or k in keep or k == "skipped"} for r in rows],
                         tmp_path / name / "results.csv")
        plot_quality_vs_nfe(read_csv(path), "fd", path.with_name("quality_vs_nfe.png"), reference=("ddpm@500", 3.2))
        widths[name] = Image.open(path.with_name("quality_vs_nfe.png")).size[0]
    assert widths["paired"] > 1.5 * widths["unpaired"]  # the second panel: FD - ddpm@500, paired
    tool = [sys.executable, str(ROOT / "tools" / "compare_samplers.py"), "--replot"]
    (tmp_path / "paired" / "quality_vs_nfe.png").unlink()
    assert forked.run(tool + [f"--out={tmp_path / 'paired'}", "--reference=ddpm@500"], timeout=120).returncode == 0
    assert Image.open(tmp_path / "paired" / "quality_vs_nfe.png").size[0] == widths["paired"]
    missing = forked.run(tool + [f"--out={tmp_path / 'none'}"], timeout=120)
    assert missing.returncode != 0 and "results.csv does not exist" in missing.stderr.strip().splitlines()[-1]
    unknown = forked.run(tool + [f"--out={tmp_path / 'paired'}", "--reference=ddpm@1000"], timeout=120)
    assert unknown.returncode != 0 and "--reference ddpm@1000: no such row" in unknown.stderr
    malformed = forked.run(tool + [f"--out={tmp_path / 'paired'}", "--reference=ddpm"], timeout=120)
    assert malformed.returncode != 0 and "SAMPLER@STEPS" in malformed.stderr.strip().splitlines()[-1]
    (tmp_path / "header").mkdir()
    (tmp_path / "header" / "results.csv").write_text("sampler,grid,steps,nfe,fd\n")  # interrupted before a row
    header = forked.run(tool + [f"--out={tmp_path / 'header'}"], timeout=120)
    assert header.returncode != 0 and "no rows" in header.stderr.strip().splitlines()[-1]


def test_compare_samplers_needs_a_model():
    result = forked.run(
        [sys.executable, str(ROOT / "tools" / "compare_samplers.py")], timeout=120
    )
    assert result.returncode != 0 and "--oracle" in result.stderr


def test_sampler_specs_carry_keyword_options_to_the_sampler():
    import pytest
    import torch

    from sde_edge.config import default_diffusion
    from sde_edge.experiments.sampler_comparison import SamplerSpec, run_comparison
    from sde_edge.oracle import MixtureOracle, rectangle_images
    from sde_edge.processes.registry import build_sde

    churned = SamplerSpec.parse("edm:s_churn=10:s_noise=1.003")
    assert churned.options == {"s_churn": 10.0, "s_noise": 1.003} and churned.label == "edm:s_churn=10:s_noise=1.003"
    assert SamplerSpec.parse("torchsde:srk").options == {"method": "srk"}
    with pytest.raises(ValueError, match="'s_churn='"):
        SamplerSpec.parse("edm:s_churn=")
    sde = build_sde(default_diffusion(tau="linear_ramp"))
    images = rectangle_images(3)
    oracle = MixtureOracle(images, (0.5, 0.3, 0.2), sde)
    x_init = oracle.sample_marginal(1.0, 8, generator=torch.Generator().manual_seed(0))
    specs = [SamplerSpec.parse(text) for text in ("heun", "edm:s_churn=0", "edm:s_churn=10")]

    class Checksum:  # a judge that sees the samples themselves
        primary = "checksum"

        def __call__(self, samples):
            return {"checksum": samples.double().sum().item()}

    rows = run_comparison(oracle, sde, tuple(x_init.shape), specs, [4], Checksum(), x_init=x_init, progress=False)
    assert [r["sampler"] for r in rows] == ["heun", "edm:s_churn=0", "edm:s_churn=10"]
    assert rows[1]["checksum"] == rows[0]["checksum"]  # s_churn = 0 is heun: the option reached the sampler...
    assert rows[2]["checksum"] != rows[0]["checksum"]  # ...and a churn changes the path
    with pytest.raises(ValueError, match="s_chrun"):  # a misspelt option names itself and the sampler's options
        run_comparison(oracle, sde, tuple(x_init.shape), [SamplerSpec.parse("edm:s_chrun=1")], [4], Checksum(),
                       x_init=x_init, progress=False)


def test_paired_fd_differences_see_what_unpaired_errors_cannot():
    """Two settings whose samples share their noise (B = A + a small shift per sample): the paired
    bootstrap's standard error of FD(B) - FD(A) is far below the unpaired errors combined."""
    import numpy as np

    from sde_edge.experiments.sampler_comparison import MetricsJudge
    from sde_edge.metrics.distances import frechet_distance_stderr

    rng = np.random.default_rng(0)
    reference = rng.normal(size=(2000, 6))
    a = rng.normal(size=(500, 6)) * 1.2 + 0.1
    b = a + 0.05 * rng.normal(size=a.shape)

    class Features:  # the judge's extractor: here the "images" are the features themselves
        def __call__(self, x, progress=False):
            return np.asarray(x)

    judge = MetricsJudge(Features(), reference)
    difference, paired_se = judge.paired_fd_difference(b, a)
    unpaired = float(np.hypot(frechet_distance_stderr(a, reference), frechet_distance_stderr(b, reference)))
    assert paired_se < 0.25 * unpaired, (paired_se, unpaired)
    assert judge.paired_fd_difference(a, a) == (0.0, 0.0)
    assert abs(difference) < 3 * paired_se + 1e-3


def test_an_interrupted_comparison_resumes_from_the_settings_it_finished(tmp_path, monkeypatch):
    """The second run reads every finished setting (row, features, samples) from the cache without
    sampling; a setting it has not seen, or another identity (checkpoint, judge, n), is sampled."""
    import numpy as np
    import pytest
    import torch

    import sde_edge.experiments.sampler_comparison as comparison
    from sde_edge.config import default_diffusion
    from sde_edge.oracle import MixtureOracle, rectangle_images
    from sde_edge.processes.registry import build_sde

    sde = build_sde(default_diffusion(tau="linear_ramp"))
    oracle = MixtureOracle(rectangle_images(3), (0.5, 0.3, 0.2), sde)
    x_init = oracle.sample_marginal(1.0, 6, generator=torch.Generator().manual_seed(0))

    class Judge:  # keeps features, as MetricsJudge does, for the paired differences
        primary = "checksum"
        last_features = None

        def __call__(self, samples):
            self.last_features = samples.flatten(1).double().numpy()
            return {"checksum": np.float64(samples.double().sum().item())}

    def compare(specs, steps, identity="run A"):
        cache = comparison.SettingCache(tmp_path / "settings", identity)
        rows = comparison.run_comparison(oracle, sde, tuple(x_init.shape), specs, steps, Judge(), x_init=x_init,
                                         out_dir=tmp_path, progress=False, cache=cache)
        return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]

    ddim, heun = comparison.SamplerSpec.parse("ddim"), comparison.SamplerSpec.parse("heun")
    first = compare([ddim, heun], [3, 4])
    assert len(list((tmp_path / "settings").glob("*.pt"))) == 4

    def refuse(*args, **kwargs):
        raise AssertionError("sampled a setting the cache holds")

    monkeypatch.setattr(comparison, "sample", refuse)
    again = compare([ddim, heun], [3, 4])
    assert [r.keys() for r in again] == [r.keys() for r in first]
    for a, b in zip(first, again):
        assert all(np.array_equal(a[k], b[k]) for k in a), (a, b)
    with pytest.raises(AssertionError, match="sampled a setting"):
        compare([ddim], [5])
    with pytest.raises(AssertionError, match="sampled a setting"):
        compare([ddim], [3], identity="run B")


def test_nfe_to_match_with_paired_errors_asks_for_a_resolved_match():
    """FD 10 at the reference; at 5 NFE the point estimate is within 10% (10.5) but its paired
    difference is not resolved (0.5 + 2 x 0.4 > 1.0); at 8 NFE it is (0.2 + 2 x 0.3 <= 1.0)."""
    from sde_edge.experiments.sampler_comparison import nfe_to_match, nfe_to_match_paired

    rows = [{"sampler": "ddpm", "grid": "uniform", "steps": 500, "nfe": 500, "fd": 10.0, "fd_diff": 0, "fd_diff_se": 0},
            {"sampler": "s", "grid": "uniform", "steps": 5, "nfe": 5, "fd": 10.5, "fd_diff": 0.5, "fd_diff_se": 0.4},
            {"sampler": "s", "grid": "uniform", "steps": 8, "nfe": 8, "fd": 10.2, "fd_diff": 0.2, "fd_diff_se": 0.3},
            {"sampler": "s", "grid": "logsnr", "steps": 8, "nfe": 8, "fd": 13.0, "fd_diff": 3.0, "fd_diff_se": 0.3},
            {"sampler": "ode", "grid": "adaptive", "steps": "", "nfe": 40, "skipped": "jump"}]
    assert nfe_to_match(rows, "ddpm", 500, "fd")["s (uniform)"] == 5
    paired = nfe_to_match_paired(rows, "ddpm", 500)
    assert paired == {"ddpm (uniform)": 500, "s (uniform)": 8, "s (logsnr)": None, "ode (adaptive)": None}
    assert nfe_to_match_paired([{k: v for k, v in r.items() if not k.startswith("fd_diff")} for r in rows],
                               "ddpm", 500) == {}
