"""The grid fit's memory of network calls (sde_edge/sampling/memo.py): a solution whose grid shares
its first k times with an earlier one is answered from memory for exactly those k calls, and its
samples are bit-identical to a fresh model's."""
import torch

from sde_edge.config import default_diffusion
from sde_edge.oracle import MixtureOracle, rectangle_images
from sde_edge.processes import build_sde
from sde_edge.sampling import sample
from sde_edge.sampling.fitted import FittedGrid, calibration_states
from sde_edge.sampling.memo import MemoModel


def _solve(model, sde, x_init, times):
    grid = FittedGrid(tuple(times), "dpmpp_2m", len(times) - 1)
    return sample("dpmpp_2m", model, sde, tuple(x_init.shape), steps=len(times) - 1, x_init=x_init, grid=grid)


def test_a_shared_prefix_is_remembered_and_changes_no_sample():
    sde = build_sde(default_diffusion(tau="linear"))
    oracle = MixtureOracle(rectangle_images(3), (0.5, 0.3, 0.2), sde)
    x_init = calibration_states(sde, (64, 1, 8, 8), 0, "test/memo")
    first = [1.0, 0.9, 0.75, 0.5, 0.3, 0.1, 0.0]
    second = first[:4] + [0.2] + first[5:]  # the fourth interior time moved: calls at 1, 0.9, 0.75, 0.5 shared
    memo = MemoModel(oracle, capacity=64)
    _solve(memo, sde, x_init, first)
    evaluations = memo.evaluations
    remembered = _solve(memo, sde, x_init, second)
    fresh = _solve(oracle, sde, x_init, second)
    assert memo.hits == 4 and memo.evaluations - evaluations == fresh.nfe - 4
    assert torch.equal(remembered.samples, fresh.samples)
    assert not torch.equal(remembered.samples, _solve(oracle, sde, x_init, first).samples)


def test_the_memory_is_bounded_and_keeps_what_is_used():
    sde = build_sde(default_diffusion(tau="linear_ramp"))
    oracle = MixtureOracle(rectangle_images(3), (0.5, 0.3, 0.2), sde)
    x = calibration_states(sde, (8, 1, 8, 8), 0, "test/memo-bound")
    memo = MemoModel(oracle, capacity=2)
    t = [torch.full((8,), v) for v in (0.9, 0.5, 0.1)]
    memo(x, t[0]), memo(x, t[1]), memo(x, t[0]), memo(x, t[2])  # t[1] is the least recently used
    assert (memo.evaluations, memo.hits) == (3, 1)
    memo(x, t[0])
    memo(x, t[1])
    assert (memo.evaluations, memo.hits) == (4, 2)


def test_the_key_reads_the_bytes_of_any_dtype():
    model = _Doubler()
    memo = MemoModel(model, capacity=4)
    x = torch.ones(2, 1, 2, 2, dtype=torch.bfloat16)
    memo(x, torch.tensor(0.5)), memo(x.clone(), torch.tensor(0.5)), memo(x, torch.tensor(0.25))
    assert (memo.evaluations, memo.hits) == (2, 1)


class _Doubler:
    parameterization = "x0"

    def __call__(self, x, t):
        return 2 * x
