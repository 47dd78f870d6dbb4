"""sde_edge.data.datasets: embedded sets offline, the shapes dataset, image folders with real pixel
ranges, and errors that name the path."""
import subprocess
import sys

import ml_collections
import numpy as np
import pytest
import torch
from PIL import Image

from sde_edge.data.datasets import gaussian_blur, load_dataset
from sde_edge.data.shapes import CLASSES, SPLIT_SIZES


def _data_config(**fields):
    config = ml_collections.ConfigDict(dict(dataset="digits", image_size=16, num_channels=1, root="", download=False,
                                            skip_bad_images=False, blur_sigma=0.0))
    config.update(fields)
    return config


@pytest.mark.parametrize(
    "name,channels,size,total", [("digits", 1, 16, 1797), ("lfw", 1, 24, 200), ("patches", 3, 16, 7 * 512)]
)
def test_embedded_datasets_load_offline_with_a_fixed_split(name, channels, size, total):
    config = _data_config(dataset=name, num_channels=channels, image_size=size)
    train, test = load_dataset(config, "train"), load_dataset(config, "test")
    assert train.images.shape[1:] == test.images.shape[1:] == (channels, size, size)
    assert len(train) + len(test) == total and len(test) == round(0.15 * total)
    for images in (train.images, test.images):
        assert images.min() >= -1 and images.max() <= 1 and images.std() > 0.1
    assert torch.equal(load_dataset(config, "test").images, test.images), "the split must not change between calls"


def test_digits_carry_their_labels_in_split_order():
    from sklearn.datasets import load_digits

    test = load_dataset(_data_config(image_size=8), "test")
    raw = load_digits()
    for image, label in zip(test.images[:20], test.labels[:20]):
        match = np.argmin(((raw.images / 16.0 * 2 - 1 - image[0].numpy()) ** 2).sum((1, 2)))
        assert raw.target[match] == label


# --- shapes -----------------------------------------------------------------------------------------
def test_shapes_are_balanced_labelled_and_sized_as_documented():
    for split, n in SPLIT_SIZES.items():
        data = load_dataset(_data_config(dataset="shapes", image_size=16), split)
        assert data.images.shape == (n, 1, 16, 16) and data.images.min() >= -1 and data.images.max() <= 1
        assert torch.bincount(data.labels).tolist() == [n // len(CLASSES)] * len(CLASSES)
    colour = load_dataset(_data_config(dataset="shapes", image_size=32, num_channels=3), "test")
    assert colour.images.shape == (2000, 3, 32, 32)
    assert (colour.images[:, 0] != colour.images[:, 1]).any(), "colour shapes are not grey"


def test_shapes_image_i_is_a_function_of_split_and_i_across_processes():
    script = (
        "import ml_collections, torch; from sde_edge.data.datasets import load_dataset; "
        "c = ml_collections.ConfigDict(dict(dataset='shapes', image_size=12, num_channels=1, blur_sigma=0.0)); "
        "d = load_dataset(c, 'test'); print(d.images[[0, 7, 1999]].sum().item(), d.labels[[0, 7, 1999]].tolist())"
    )
    outputs = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
               for _ in range(2)}
    assert len(outputs) == 1
    here = load_dataset(_data_config(dataset="shapes", image_size=12), "test")
    assert f"{here.images[[0, 7, 1999]].sum().item()}" in outputs.pop()
    other = load_dataset(_data_config(dataset="shapes", image_size=12), "train")
    assert not torch.equal(other.images[:5], here.images[:5]), "the splits must differ"


def test_large_shapes_splits_are_kept_on_disk_and_rendered_again_when_damaged(monkeypatch, classifier_cache):
    from sde_edge.data import shapes as module

    monkeypatch.setattr(module, "DISK_CACHE_SIZE", 8)  # the real threshold's splits take minutes to render
    renders = []
    render = module.render
    monkeypatch.setattr(module, "render", lambda *args: renders.append(args[1]) or render(*args))
    reference = module._rendered("test", 8, 1)
    renders.clear()
    first = module.shapes.__wrapped__("test", 8, 1)  # past the in-memory cache: the disk's alone
    path = classifier_cache / "shapes" / "test-8px-1ch-v1.pt"
    assert path.exists() and renders == [8]
    again = module.shapes.__wrapped__("test", 8, 1)
    assert renders == [8], "a verified cache file is loaded, not rendered again"
    for images, labels in (first, again):
        assert torch.equal(images, reference[0]) and torch.equal(labels, reference[1])
    path.write_bytes(path.read_bytes()[:1000])  # a truncated file: rendered again and rewritten
    damaged = module.shapes.__wrapped__("test", 8, 1)
    assert renders == [8, 8] and torch.equal(damaged[0], reference[0])
    assert torch.equal(module.shapes.__wrapped__("test", 8, 1)[0], reference[0]) and renders == [8, 8]


def test_blur_sigma_low_passes_every_image():
    sharp = load_dataset(_data_config(dataset="shapes", image_size=16), "test").images
    blurred = load_dataset(_data_config(dataset="shapes", image_size=16, blur_sigma=1.0), "test").images
    spectrum = lambda x: torch.fft.rfft2(x).abs().mean(0)  # noqa: E731
    high = spectrum(blurred)[0, 6:, 6:].mean() / spectrum(sharp)[0, 6:, 6:].mean()
    low = spectrum(blurred)[0, 0, 0] / spectrum(sharp)[0, 0, 0]
    assert high < 0.2 and abs(low - 1) < 0.02
    impulse = torch.zeros(1, 1, 25, 25)  # wide enough that the borders' reflection never reaches the centre
    impulse[0, 0, 12, 12] = 1
    kernel = gaussian_blur(impulse, 1.5)[0, 0]
    assert kernel.sum() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(
        kernel[12, 12:15].numpy() / kernel[12, 12].item(), np.exp(-(np.arange(3) ** 2) / (2 * 1.5**2)), rtol=1e-5
    )


# --- image folders --------------------------------------------------------------------------------------
def _write_images(folder):
    rng = np.random.default_rng(0)
    (folder / "nested" / "deeper").mkdir(parents=True)
    Image.fromarray(rng.integers(0, 255, (40, 30, 3), dtype=np.uint8)).save(folder / "a.png")
    Image.fromarray(rng.integers(0, 255, (20, 50, 3), dtype=np.uint8)).save(folder / "nested" / "b.jpg")
    Image.fromarray(rng.integers(0, 255, (33, 33), dtype=np.uint8), mode="L").save(folder / "nested" / "gray.png")
    Image.fromarray(rng.integers(0, 255, (64, 48, 4), dtype=np.uint8), mode="RGBA").save(
        folder / "nested" / "deeper" / "alpha.png"
    )
    (folder / "notes.txt").write_text("not an image")
    for i in range(8):
        Image.fromarray(rng.integers(0, 255, (16 + i, 16, 3), dtype=np.uint8)).save(folder / f"extra_{i}.jpeg")


@pytest.mark.parametrize("channels", [1, 3])
def test_folder_of_mixed_images(tmp_path, channels):
    _write_images(tmp_path)
    config = _data_config(dataset="folder", root=str(tmp_path), num_channels=channels, image_size=12)
    train, test = load_dataset(config, "train"), load_dataset(config, "test")
    assert len(train) + len(test) == 12 and len(test) == 2
    images = train.batch(range(len(train)))
    assert images.shape == (10, channels, 12, 12)
    assert images.min() >= -1 and images.max() <= 1


def _ramp_folder(folder, image):
    folder.mkdir()
    image.save(folder / ("ramp.png" if image.mode.startswith("I;16") else "ramp.tif"))
    config = _data_config(dataset="folder", root=str(folder), image_size=16)
    data = load_dataset(config, "train")
    return data.batch(range(len(data)))


@pytest.mark.parametrize("kind", ["uint16", "int32", "float32"])
def test_wide_images_keep_their_real_range(tmp_path, kind):
    """A ramp of mean 0.5 in its own range must load with mean ~0 in [-1, 1] (not white, not black)."""
    ramp = np.linspace(0, 1, 64 * 64).reshape(64, 64)
    if kind == "uint16":
        image = Image.fromarray((ramp * 65535).astype(np.uint16))
    elif kind == "int32":
        image = Image.fromarray((ramp * 65535).astype(np.int32))
    else:
        image = Image.fromarray(ramp.astype(np.float32))
    loaded = _ramp_folder(tmp_path / kind, image)
    assert abs(loaded.mean().item()) < 0.02, f"{kind}: mean {loaded.mean().item():.3f} in [-1, 1]"


def test_float_image_out_of_range_is_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="ramp.tif.*float images must lie in"):
        _ramp_folder(tmp_path / "hdr", Image.fromarray(np.full((8, 8), 3.5, dtype=np.float32)))  # a .tif


def test_decompression_bomb_is_a_bad_image(tmp_path):
    _write_images(tmp_path)
    Image.new("L", (1, 1)).save(tmp_path / "bomb.png")
    config = _data_config(dataset="folder", root=str(tmp_path), num_channels=3, image_size=8)
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = 100  # every 10x10-plus image is now a "bomb" for PIL
    try:
        with pytest.raises(ValueError, match="cannot read image"):
            load_dataset(config)
        config.skip_bad_images = True
        dataset = load_dataset(config)
        assert dataset is not None
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def test_missing_folder_names_the_path(tmp_path):
    missing = tmp_path / "no_such_folder"
    with pytest.raises(FileNotFoundError, match="no_such_folder"):
        load_dataset(_data_config(dataset="folder", root=str(missing)))


def test_empty_folder_names_the_path(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty"):
        load_dataset(_data_config(dataset="folder", root=str(tmp_path / "empty")))


def test_corrupt_image_names_the_file_or_is_skipped_and_counted(tmp_path):
    _write_images(tmp_path)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    config = _data_config(dataset="folder", root=str(tmp_path), num_channels=3, image_size=8)
    with pytest.raises(ValueError, match="broken.png"):
        load_dataset(config)
    config.skip_bad_images = True
    dataset = load_dataset(config)
    assert dataset.num_skipped == 1 and len(dataset) == 10


def test_torchvision_sets_never_download_unless_asked(tmp_path):
    with pytest.raises(FileNotFoundError, match="data.download"):
        load_dataset(_data_config(dataset="mnist", root=str(tmp_path)))


def test_unknown_dataset_and_channel_mismatch_are_clear_errors():
    with pytest.raises(ValueError, match="data.dataset"):
        load_dataset(_data_config(dataset="imagenet"))
    with pytest.raises(ValueError, match="data.num_channels"):
        load_dataset(_data_config(dataset="digits", num_channels=3))
