"""Sampling that survives a kill: ``sample_in_batches(partial=...)`` resumes at the first unfinished
batch and gives the samples an uninterrupted run gives, bit for bit; it refuses a partial file of
another run, with one line naming the file and what differs, and deletes nothing."""
import pytest
import torch

import sde_edge.sampling.batched as batched
from helpers import edge_rich_images
from sde_edge.config import default_diffusion
from sde_edge.oracle import MixtureOracle
from sde_edge.process_registry import build_sde
from sde_edge.sampling.batched import sample_in_batches

SHAPE = (10, 1, 8, 8)  # batches of 3: 3 + 3 + 3 + 1


@pytest.fixture(scope="module")
def model():
    sde = build_sde(default_diffusion())  # the edge-preserving process
    return MixtureOracle(edge_rich_images(3, dtype=torch.float32), (0.5, 0.3, 0.2), sde), sde


def _draw(model, partial=None, **changes):
    oracle, sde = model
    arguments = dict(steps=20, seed=7, batch_size=3, progress=False, source="oracle") | changes
    return sample_in_batches("ddpm", oracle, sde, SHAPE, partial=partial, **arguments)  # ddpm: noise at every step


def _counting_sample(monkeypatch, fail_at=None):
    """Replace the per-batch ``sample`` with one that counts its calls (and raises at call ``fail_at``)."""
    calls, real = [], batched.sample

    def counted(*args, **kwargs):
        calls.append(args[3][0])
        if len(calls) == fail_at:
            raise KeyboardInterrupt("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(batched, "sample", counted)
    return calls


def _kill_after_two_batches(model, partial, monkeypatch):
    _counting_sample(monkeypatch, fail_at=3)
    with pytest.raises(KeyboardInterrupt):
        _draw(model, partial)
    monkeypatch.undo()


def test_a_killed_run_resumes_at_its_first_unfinished_batch_bit_for_bit(model, tmp_path, monkeypatch):
    whole = _draw(model)
    partial = tmp_path / "draw.partial.pt"
    _kill_after_two_batches(model, partial, monkeypatch)
    assert torch.load(partial, weights_only=True)["samples"].shape[0] == 6
    calls = _counting_sample(monkeypatch)
    resumed = _draw(model, partial)
    assert calls == [3, 1]  # only the two unfinished batches are drawn again
    assert torch.equal(resumed.samples, whole.samples) and resumed.nfe == whole.nfe
    assert resumed.resumed_seconds > 0 and not partial.exists()
    # the test can fail: a resume that restarted the random stream would draw other samples
    monkeypatch.undo()
    assert not torch.equal(_draw(model, seed=8).samples[6:], whole.samples[6:])


@pytest.mark.parametrize("change, field", [({"steps": 10}, "steps"), ({"seed": 8}, "seed"),
                                           ({"source": "another checkpoint"}, "source")])
def test_a_partial_file_of_another_run_is_one_line_naming_the_file_and_kept(model, tmp_path, monkeypatch,
                                                                             change, field):
    partial = tmp_path / "draw.partial.pt"
    _kill_after_two_batches(model, partial, monkeypatch)
    before = partial.read_bytes()
    with pytest.raises(ValueError, match=rf"draw\.partial\.pt: .*other {field} .*remove it to start over") as error:
        _draw(model, partial, **change)
    assert "\n" not in str(error.value) and partial.read_bytes() == before


def test_an_unreadable_partial_file_is_one_line_naming_it(model, tmp_path):
    partial = tmp_path / "draw.partial.pt"
    partial.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match=r"draw\.partial\.pt: unreadable partial sampling run"):
        _draw(model, partial)
    assert partial.read_bytes() == b"not a torch file"
