"""sde_edge.data: embedded sets offline, image folders, and errors that name the path."""
import ml_collections
import numpy as np
import pytest
import torch
from PIL import Image

from sde_edge.data import load_dataset


def _data_config(**fields):
    config = ml_collections.ConfigDict(dict(dataset="digits", image_size=16, num_channels=1, root="", download=False, skip_bad_images=False))
    config.update(fields)
    return config


@pytest.mark.parametrize("name,channels,size,total", [("digits", 1, 16, 1797), ("lfw", 1, 24, 200), ("patches", 3, 16, 7 * 512)])
def test_embedded_datasets_load_offline_with_a_fixed_split(name, channels, size, total):
    config = _data_config(dataset=name, num_channels=channels, image_size=size)
    train, test = load_dataset(config, "train"), load_dataset(config, "test")
    assert train.shape[1:] == test.shape[1:] == (channels, size, size)
    assert len(train) + len(test) == total and len(test) == round(0.15 * total)
    for images in (train, test):
        assert images.min() >= -1 and images.max() <= 1 and images.std() > 0.1
    assert torch.equal(load_dataset(config, "test"), test), "the split must not change between calls"


def _write_images(folder):
    rng = np.random.default_rng(0)
    (folder / "nested" / "deeper").mkdir(parents=True)
    Image.fromarray(rng.integers(0, 255, (40, 30, 3), dtype=np.uint8)).save(folder / "a.png")
    Image.fromarray(rng.integers(0, 255, (20, 50, 3), dtype=np.uint8)).save(folder / "nested" / "b.jpg")
    Image.fromarray(rng.integers(0, 255, (33, 33), dtype=np.uint8), mode="L").save(folder / "nested" / "gray.png")
    Image.fromarray(rng.integers(0, 255, (64, 48, 4), dtype=np.uint8), mode="RGBA").save(folder / "nested" / "deeper" / "alpha.png")
    (folder / "notes.txt").write_text("not an image")
    for i in range(8):
        Image.fromarray(rng.integers(0, 255, (16 + i, 16, 3), dtype=np.uint8)).save(folder / f"extra_{i}.jpeg")


@pytest.mark.parametrize("channels", [1, 3])
def test_folder_of_mixed_images(tmp_path, channels):
    _write_images(tmp_path)
    config = _data_config(dataset="folder", root=str(tmp_path), num_channels=channels, image_size=12)
    train, test = load_dataset(config, "train"), load_dataset(config, "test")
    assert len(train) + len(test) == 12 and len(test) == 2
    images = torch.stack([train[i] for i in range(len(train))])
    assert images.shape == (10, channels, 12, 12)
    assert images.min() >= -1 and images.max() <= 1


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
