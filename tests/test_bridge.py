"""The bridged difference to a stochastic reference, against the truth of large samples."""
import numpy as np

from sde_edge.experiments.bridge import add_bridged_differences, nfe_to_match_bridged
from sde_edge.experiments.sampler_comparison import MetricsJudge
from sde_edge.metrics.distances import FixedReferenceFD


class Features:  # the judge's extractor: here the "images" are the features themselves
    def __call__(self, x, progress=False):
        return np.asarray(x)


def _settings(rng, n):
    """(reference, bridge, setting) features of n samples started from the same noise z: the bridge
    and the setting are functions of z (deterministic samplers), the reference is not (ddpm's own
    noise at every step: a fresh draw)."""
    z = rng.normal(size=(n, 6))
    bridge = 1.1 * z + 0.1
    setting = bridge + 0.15 * np.tanh(z) + 0.05
    reference = 1.05 * rng.normal(size=(n, 6)) + 0.05
    return reference, bridge, setting


def test_the_bridged_difference_is_unbiased_and_tighter_than_the_direct_pairs():
    data = np.random.default_rng(0).normal(size=(2000, 6))
    judge = MetricsJudge(Features(), data)
    fd = FixedReferenceFD(data)
    reference, bridge, setting = _settings(np.random.default_rng(1), 400_000)  # the truth: large samples
    truth = fd(setting) - fd(reference)
    inside, ratios = 0, []
    for seed in range(12):
        rng = np.random.default_rng(100 + seed)
        _, bridge_n, setting_n = _settings(rng, 1000)  # the comparison's shared noise (its reference unused)
        big_reference, big_bridge, _ = _settings(np.random.default_rng(200 + seed), 20_000)  # the large pair
        term = judge.paired_fd_difference(big_bridge, big_reference, resamples=100)
        reference_n = _settings(rng, 1000)[0]  # the direct route: the reference's own n samples
        rows = [{"sampler": "ddim", "grid": "uniform", "nfe": 10, "_features": setting_n},
                {"sampler": "bridge", "grid": "uniform", "nfe": 100, "_features": bridge_n}]
        add_bridged_differences(rows, judge, rows[1], term)
        estimate, se = rows[0]["fd_diff_bridged"], rows[0]["fd_diff_bridged_se"]
        inside += abs(estimate - truth) < 2.5 * se
        ratios.append(se / judge.paired_fd_difference(setting_n, reference_n)[1])
        assert rows[1]["fd_diff_bridged"] == term[0] and rows[1]["fd_diff_bridged_se"] == term[1]
    assert inside >= 11, inside  # 2.5 s.e. cover the truth (98.8% of the time, were the errors exact)
    assert np.median(ratios) < 0.5, ratios  # the large pair buys what 1,000 direct pairs cannot


def test_nfe_to_match_bridged_asks_for_a_resolved_match():
    rows = [{"sampler": "ddim", "grid": "uniform", "nfe": 4, "fd_diff_bridged": 0.3, "fd_diff_bridged_se": 0.2},
            {"sampler": "ddim", "grid": "uniform", "nfe": 8, "fd_diff_bridged": 0.1, "fd_diff_bridged_se": 0.1},
            {"sampler": "ddpm", "grid": "uniform", "nfe": 10, "fd_diff_bridged": -1.0, "fd_diff_bridged_se": 1.0}]
    assert nfe_to_match_bridged(rows, target=5.0) == {"ddim (uniform)": 8, "ddpm (uniform)": None}
