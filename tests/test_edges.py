"""sde_edge.processes.edge_map: the Sobel edge map (paper_appendix/math.md, section 1)."""
import pytest
import torch

from sde_edge.processes.edge_map import edge_map


def test_constant_image_has_no_edges_with_replicate_padding(make_sde):
    flat = torch.full((2, 3, 8, 8), -1.0)
    assert bool((edge_map(flat) == 0).all())
    sde = make_sde(tau="linear_ramp")
    t = torch.tensor([0.1, 0.3])
    expected = sde.schedule.noise(t)[:, None, None, None].expand_as(flat)
    torch.testing.assert_close(sde.marginal_prob(flat, t)[1], expected)


def test_zero_padding_puts_a_false_edge_on_the_frame():
    e = edge_map(torch.full((1, 1, 8, 8), -1.0), padding="zeros")[0, 0]
    interior = e[1:-1, 1:-1]
    frame = torch.cat([e[0], e[-1], e[:, 0], e[:, -1]])
    assert bool((interior == 0).all())
    assert bool((frame > 0).all()) and e.max() == pytest.approx(1.0)


def test_vertical_step_edge():
    image = torch.where(torch.arange(8) < 4, -1.0, 1.0).expand(1, 1, 8, 8)
    e = edge_map(image)[0, 0]
    expected = torch.zeros(8, 8)
    expected[:, 3:5] = 1.0
    torch.testing.assert_close(e, expected)


def test_per_image_normalisation_ignores_the_rest_of_the_batch():
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, 8, 8, generator=generator) * 2 - 1
    strong = 10 * (torch.rand(1, 3, 8, 8, generator=generator) * 2 - 1)
    alone = edge_map(image)
    in_batch = edge_map(torch.cat([image, strong]))[:1]
    torch.testing.assert_close(in_batch, alone)
    assert alone.max() == pytest.approx(1.0)
    # the public code's batch-wide max does depend on the neighbours
    assert not torch.allclose(edge_map(torch.cat([image, strong]), norm="batch")[:1], alone)


def test_edge_map_keeps_dtype_and_rejects_bad_shapes():
    for dtype in (torch.float32, torch.float64):
        assert edge_map(torch.rand(1, 1, 5, 5, dtype=dtype)).dtype == dtype
    with pytest.raises(ValueError, match="shape"):
        edge_map(torch.rand(5, 5))
