import functools
import gzip
import hashlib
import http.server
import socket
import struct
import threading
from contextlib import contextmanager
from pathlib import Path

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


# --- downloads, from servers on this machine ---------------------------------------------------------

@contextmanager
def http_folder(folder: Path):
    """A local HTTP server for `folder`'s files: a mirror that answers."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/"
        finally:
            server.shutdown()
            thread.join(10)


@contextmanager
def silent_mirror():
    """A mirror that accepts connections and never answers; yields its URL and the process-wide socket
    timeout seen while a download was waiting on it."""
    seen = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.1)
        done = threading.Event()

        def accept():
            held = []
            while not done.is_set():
                try:
                    held.append(listener.accept()[0])  # a download is now waiting on this connection
                    seen.append(socket.getdefaulttimeout())
                except TimeoutError:
                    pass
            for connection in held:
                connection.close()

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{listener.getsockname()[1]}/", seen
        finally:
            done.set()
            thread.join(10)


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/"  # nobody listens there once it is closed


def test_a_download_falls_back_to_the_next_mirror_and_checks_each_file(tmp_path, monkeypatch):
    served = tmp_path / "mirror"
    split = write_raw(served, gz=True)
    resources = [(f.name, hashlib.md5(f.read_bytes()).hexdigest()) for f in sorted(served.iterdir())]
    with http_folder(served) as url:
        monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", [closed_port_url(), url])
        monkeypatch.setattr(torchvision.datasets.MNIST, "resources", resources)
        d = load_dataset("mnist", root=tmp_path / "root")
        assert d.train_y.tolist() == split["train"][1].tolist() and d.test_y.tolist() == split["t10k"][1].tolist()
        raw = tmp_path / "root" / "MNIST" / "raw"
        assert sorted(p.name for p in raw.iterdir()) == sorted(name.removesuffix(".gz") for name, _ in resources)

        wrong = [(name, "0" * 32) for name, _ in resources]  # what a mirror serves must match torchvision's MD5
        monkeypatch.setattr(torchvision.datasets.MNIST, "resources", wrong)
        with pytest.raises(DatasetUnavailable, match="MD5"):
            load_dataset("mnist", root=tmp_path / "other")
        assert not list((tmp_path / "other" / "MNIST" / "raw").iterdir())  # nothing half-written is left


def test_a_silent_mirror_times_out_without_touching_the_process_wide_socket_timeout(tmp_path, monkeypatch):
    monkeypatch.setattr(data_module, "DOWNLOAD_TIMEOUT_S", 0.5)
    before = socket.getdefaulttimeout()
    with silent_mirror() as (url, seen):
        monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", [url])
        with pytest.raises(DatasetUnavailable, match="timed out"):
            load_dataset("mnist", root=tmp_path)
    assert seen and set(seen) == {before}  # unchanged while the download waited: other threads use it too
    assert socket.getdefaulttimeout() == before


def test_an_offline_download_leaves_the_socket_timeout_alone(tmp_path, monkeypatch):
    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", [closed_port_url()])
    before = socket.getdefaulttimeout()
    with pytest.raises(DatasetUnavailable, match="refused"):
        load_dataset("mnist", root=tmp_path)
    assert socket.getdefaulttimeout() == before
