"""Sampling that survives a kill: ``sample_in_batches(partial=...)`` resumes at the first unfinished
batch and gives the samples an uninterrupted run gives, bit for bit; it refuses the partial batches of
another run, with one line naming the file and what differs, and deletes nothing."""
import pytest
import torch

import sde_edge.sampling.batched as batched
from helpers import edge_rich_images
from sde_edge.config import default_diffusion
from sde_edge.oracle import MixtureOracle
from sde_edge.processes.registry import build_sde
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


def _kill_after_two_batches(model, partial, monkeypatch, **changes):
    _counting_sample(monkeypatch, fail_at=3)
    with pytest.raises(KeyboardInterrupt):
        _draw(model, partial, **changes)
    monkeypatch.undo()


def test_a_killed_run_resumes_at_its_first_unfinished_batch_bit_for_bit(model, tmp_path, monkeypatch):
    whole = _draw(model)
    partial = tmp_path / "draw.partial"
    _kill_after_two_batches(model, partial, monkeypatch)
    assert sorted(path.name for path in partial.iterdir()) == ["batch_00000000.pt", "batch_00000003.pt"]
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
    partial = tmp_path / "draw.partial"
    _kill_after_two_batches(model, partial, monkeypatch)
    before = {path.name: path.read_bytes() for path in partial.iterdir()}
    with pytest.raises(ValueError, match=rf"draw\.partial/batch_00000000\.pt: .*other {field} .*remove it to start"):
        _draw(model, partial, **change)
    assert {path.name: path.read_bytes() for path in partial.iterdir()} == before  # nothing is lost


def test_an_unreadable_partial_file_is_one_line_naming_it(model, tmp_path):
    broken = tmp_path / "draw.partial" / "batch_00000000.pt"
    broken.parent.mkdir()
    broken.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match=r"draw\.partial/batch_00000000\.pt: unreadable partial sampling run"):
        _draw(model, broken.parent)
    assert broken.read_bytes() == b"not a torch file"


def test_a_file_where_the_partial_folder_belongs_is_one_line_and_kept(model, tmp_path):
    partial = tmp_path / "draw.partial"
    partial.write_text("mine")
    with pytest.raises(ValueError, match=r"draw\.partial: expected the folder of a partial sampling run"):
        _draw(model, partial)
    assert partial.read_text() == "mine"


@pytest.mark.cuda
def test_a_killed_cuda_run_resumes_bit_for_bit(tmp_path, monkeypatch):
    """The kept generator state is the CUDA generator's: a resume on the GPU draws the same noise."""
    sde = build_sde(default_diffusion())
    cuda_model = MixtureOracle(edge_rich_images(3, dtype=torch.float32).to("cuda"), (0.5, 0.3, 0.2), sde), sde
    whole = _draw(cuda_model, device="cuda")
    partial = tmp_path / "draw.partial"
    _kill_after_two_batches(cuda_model, partial, monkeypatch, device="cuda")
    resumed = _draw(cuda_model, partial, device="cuda")
    assert torch.equal(resumed.samples, whole.samples) and not partial.exists()
