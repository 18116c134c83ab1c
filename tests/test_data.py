import gzip
import struct

import numpy as np
import pytest
import torch
import torchvision

from lora_core import DATASETS, DatasetUnavailable, load_dataset
from lora_core import data as data_module


def write_idx(path, array: np.ndarray, gz=False):
    """The IDX format MNIST ships in: magic (0, 0, uint8 type 8, ndim), big-endian dims, raw bytes."""
    header = struct.pack(">HBB", 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if gz else open
    with opener(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def fake_split(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)


def write_raw(raw_dir, gz=False, n_train=30, n_test=20):
    raw_dir.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    split = {}
    for prefix, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        images, labels = split[prefix] = fake_split(n, seed)
        write_idx(raw_dir / f"{prefix}-images-idx3-ubyte{suffix}", images, gz)
        write_idx(raw_dir / f"{prefix}-labels-idx1-ubyte{suffix}", labels, gz)
    return split


def test_bundled_sample():
    d = load_dataset("mnist-sample")
    assert d.train_x.shape == (5000, 784) and d.test_x.shape == (10000, 784)
    assert d.train_x.dtype == torch.float32 and d.train_y.dtype == torch.int64
    assert torch.bincount(d.train_y).tolist() == [500] * 10
    assert torch.bincount(d.test_y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert d.classes == tuple("0123456789") and "offline" in d.source and "CC BY-SA" in d.source
    # normalised as ToTensor + Normalize((0.1307,), (0.3081,)): black pixels map to −0.1307/0.3081
    assert d.train_x.min().item() == pytest.approx(-0.1307 / 0.3081)
    assert d.train_x.max().item() == pytest.approx((1 - 0.1307) / 0.3081)
    x2, y2 = d.train_subset([2])
    assert len(x2) == 500 and set(y2.tolist()) == {2}


def test_mnist_through_torchvision_matches_totensor_normalize(tmp_path):
    split = write_raw(tmp_path / "MNIST" / "raw")
    d = load_dataset("mnist", root=tmp_path)
    reference = torchvision.datasets.MNIST(str(tmp_path), train=True, transform=torchvision.transforms.Compose([
        torchvision.transforms.ToTensor(), torchvision.transforms.Normalize((0.1307,), (0.3081,))]))
    expected = torch.stack([reference[i][0].view(784) for i in range(len(reference))])
    assert torch.allclose(d.train_x, expected, atol=1e-6)
    assert d.train_y.tolist() == split["train"][1].tolist()
    assert d.test_y.tolist() == split["t10k"][1].tolist() and len(d.test_x) == 20
    assert d.classes == tuple("0123456789") and str(tmp_path) in d.source


def test_fashion_mnist_from_debian_files_without_network(tmp_path, monkeypatch):
    debian = tmp_path / "debian"
    split = write_raw(debian, gz=True)
    monkeypatch.setattr(data_module, "DEBIAN_FASHION_DIR", debian)
    d = load_dataset("fashion-mnist", root=tmp_path / "root")
    assert d.train_y.tolist() == split["train"][1].tolist()
    assert d.classes[0] == "T-shirt/top" and len(d.classes) == 10
    assert (tmp_path / "root" / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").exists()


@pytest.mark.skipif(not data_module.DEBIAN_FASHION_DIR.is_dir(), reason="dataset-fashion-mnist not installed")
def test_real_fashion_mnist_from_debian(tmp_path):
    d = load_dataset("fashion-mnist", root=tmp_path)
    assert d.train_x.shape == (60000, 784) and d.test_x.shape == (10000, 784)
    assert torch.bincount(d.test_y).tolist() == [1000] * 10


def test_offline_download_says_how_to_get_the_files(tmp_path):
    with pytest.raises(DatasetUnavailable, match="mnist-sample") as err:
        load_dataset("mnist", root=tmp_path / "empty")
    assert "MNIST/raw" in str(err.value) and "\n" not in str(err.value)


def test_garbage_files_are_reported(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    write_raw(raw)
    (raw / "train-images-idx3-ubyte").write_bytes(b"not an idx file at all")
    with pytest.raises(DatasetUnavailable, match="mnist-sample"):
        load_dataset("mnist", root=tmp_path)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="fashion-mnist") as err:
        load_dataset("cifar")
    assert all(name in str(err.value) for name in DATASETS)
