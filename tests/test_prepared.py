"""Prepared image folders (sde_edge.data.prepared): today's images in today's order, noticed changes,
damaged files rebuilt, and concurrent preparations that do not collide."""
import json
import os
import subprocess
import sys
import time

import ml_collections
import numpy as np
import pytest
import torch
from PIL import Image

from helpers import ROOT
from sde_edge.data.datasets import load_dataset
from sde_edge.data.prepared import prepare, prepared_dir
from sde_edge.training.batches import BatchSource


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("SDE_EDGE_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "images"
    (root / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(40):
        size = (int(rng.integers(12, 30)), int(rng.integers(12, 30)))
        pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        suffix = ".jpg" if i % 3 else ".png"
        Image.fromarray(pixels).save(root / ("sub" if i % 4 == 0 else "") / f"img{i:03d}{suffix}")
    return root


def _data(root, prepare_it, channels=3):
    return ml_collections.ConfigDict(dict(dataset="folder", root=str(root), image_size=8, num_channels=channels,
                                          skip_bad_images=False, blur_sigma=0.0, download=False,
                                          validation_fraction=0.0, prepare=prepare_it, num_workers=0))


@pytest.mark.parametrize("split", ["train", "test"])
def test_a_prepared_folder_yields_todays_images_in_todays_order(folder, split):
    today, prepared = (load_dataset(_data(folder, flag), split) for flag in (False, True))
    assert prepared.paths == today.paths
    difference = (today.first(10**6) - prepared.first(10**6)).abs().max().item()
    assert difference <= 1.0 / 255 + 1e-6  # [-1, 1] images: half a uint8 level is 1/255


def test_batches_by_seed_and_step_are_the_same_with_and_without_workers(folder):
    today = BatchSource(load_dataset(_data(folder, False)), 8, seed=3, device="cpu")
    plain = BatchSource(load_dataset(_data(folder, True)), 8, seed=3, device="cpu")
    ahead = BatchSource(load_dataset(_data(folder, True)), 8, seed=3, device="cpu", workers=2)
    resumed = BatchSource(load_dataset(_data(folder, True)), 8, seed=3, device="cpu", workers=2)
    for step in range(10):  # past an epoch boundary (34 images, 4 batches an epoch)
        a, b, c = today.batch(step), plain.batch(step), ahead.batch(step)
        assert torch.equal(b, c) and (a - b).abs().max() <= 1.0 / 255 + 1e-6
        if step >= 6:  # a source opened at step 6, as after a resume
            assert torch.equal(resumed.batch(step), b)
    ahead.close()
    resumed.close()


def test_a_changed_folder_is_prepared_again(folder):
    array, paths = prepare(folder, 8, 3, progress=False)
    assert len(paths) == 40
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(folder / "added.png")
    assert len(prepare(folder, 8, 3, progress=False)[1]) == 41
    (folder / "img001.jpg").unlink()
    assert len(prepare(folder, 8, 3, progress=False)[1]) == 40
    time.sleep(0.01)  # a new modification time even on coarse clocks
    Image.fromarray(np.full((16, 16, 3), 255, np.uint8)).save(folder / "img002.jpg")
    array, paths = prepare(folder, 8, 3, progress=False)
    assert array[paths.index(folder / "img002.jpg")].min() >= 250  # the new content, not the cached one


@pytest.mark.parametrize("damage", ["truncate", "flip a bit"])
def test_a_damaged_prepared_file_is_rebuilt_not_used(folder, damage):
    original = np.array(prepare(folder, 8, 3, progress=False)[0])
    images = prepared_dir(folder, 8, 3) / "images.npy"
    data = bytearray(images.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[-100] ^= 0x10
    images.write_bytes(bytes(data))
    assert np.array_equal(np.array(prepare(folder, 8, 3, progress=False)[0]), original)


def test_the_splits_of_one_run_read_the_checksum_once_and_a_later_change_again(folder, monkeypatch):
    import sde_edge.data.prepared as prepared

    reads = []
    checksum = prepared._checksum
    monkeypatch.setattr(prepared, "_checksum", lambda path: reads.append(path) or checksum(path))
    original = np.array(prepare(folder, 8, 3, progress=False)[0])  # builds: one read of the written array
    for split in ("train", "test", "train"):
        load_dataset(_data(folder, True), split)
    assert len(reads) == 2  # the build's and the first open's
    images = prepared_dir(folder, 8, 3) / "images.npy"
    data = bytearray(images.read_bytes())
    data[-100] ^= 0x10
    images.write_bytes(bytes(data))
    os.utime(images, ns=(images.stat().st_atime_ns, images.stat().st_mtime_ns + 10**9))  # a later write
    assert np.array_equal(np.array(prepare(folder, 8, 3, progress=False)[0]), original)  # caught and rebuilt
    assert len(reads) >= 3


def test_two_processes_preparing_the_same_folder_at_once_do_not_corrupt_it(folder):
    code = f"from sde_edge.data.prepared import prepare; print(len(prepare({str(folder)!r}, 8, 3, progress=False)[1]))"
    env = {**os.environ, "SDE_EDGE_CACHE": os.environ["SDE_EDGE_CACHE"]}
    runs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
            for _ in range(2)]
    outputs = [run.communicate(timeout=300)[0].strip() for run in runs]
    assert [run.returncode for run in runs] == [0, 0] and outputs == ["40", "40"]
    manifest = json.loads((prepared_dir(folder, 8, 3) / "manifest.json").read_text())
    array = prepare(folder, 8, 3, progress=False)[0]
    assert list(array.shape) == manifest["shape"] and not list(prepared_dir(folder, 8, 3).glob(".images.*"))
