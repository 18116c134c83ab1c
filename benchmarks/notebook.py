"""The original notebook's pipeline on the CPU, as functions: the reference the benchmarks compare against.

torchvision dataset with ToTensor + Normalize per image, DataLoader at batch 10 with shuffle, default
Adam(lr=1e-3), and the per-sample Python loop of its test().

Its training and test loops run as the notebook runs them: on a thread of their own where subnormal floats are
computed as the CPU computes them by default (lora_core flushes them to zero in the thread that imports it and
in every thread started from there), on as many torch threads as the process's main thread has.
"""
import functools
from concurrent.futures import ThreadPoolExecutor

import torch
import torch.nn as nn
import torchvision.datasets as datasets
import torchvision.transforms as transforms

_MAIN_THREADS = torch.get_num_threads()


def _default_float_mode() -> None:
    torch.set_flush_denormal(False)  # before this thread's first torch work: torch's workers it starts inherit it
    torch.set_num_threads(_MAIN_THREADS)  # torch's thread count is a thread's own


_THREAD = ThreadPoolExecutor(1, thread_name_prefix="notebook", initializer=_default_float_mode)


def as_written(loop):
    """`loop` runs on the notebook's own thread (see the module's note); the caller waits for it."""
    @functools.wraps(loop)
    def on_its_thread(*args, **kwargs):
        return _THREAD.submit(loop, *args, **kwargs).result()
    return on_its_thread


class Net(nn.Module):
    """The notebook's classifier (same layers, names and init order as lora_core.MLP)."""

    def __init__(self, hidden_size1=1000, hidden_size2=2000):
        super().__init__()
        self.linear1 = nn.Linear(28 * 28, hidden_size1)
        self.linear2 = nn.Linear(hidden_size1, hidden_size2)
        self.linear3 = nn.Linear(hidden_size2, 10)
        self.relu = nn.ReLU()

    def forward(self, img):
        x = img.view(-1, 28 * 28)
        x = self.relu(self.linear1(x))
        x = self.relu(self.linear2(x))
        return self.linear3(x)


def new_net(seed: int = 0) -> Net:
    torch.manual_seed(seed)  # the notebook seeds the global generator once, then builds the net
    return Net()


def loaders(root, batch_size: int = 10):
    """(train_loader, test_loader) over FashionMNIST files under root/FashionMNIST/raw, as the notebook builds them."""
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    trainset = datasets.FashionMNIST(root=str(root), train=True, download=False, transform=transform)
    testset = datasets.FashionMNIST(root=str(root), train=False, download=False, transform=transform)
    return (torch.utils.data.DataLoader(trainset, batch_size=batch_size, shuffle=True),
            torch.utils.data.DataLoader(testset, batch_size=batch_size, shuffle=True))


def make_optimizer(net: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.Adam(net.parameters(), lr=0.001)


def batches(loader):
    """Endless batches: a fresh shuffled pass whenever one ends."""
    while True:
        yield from loader


@as_written
def train_steps(net: nn.Module, optimizer, batch_iter, steps: int) -> int:
    """`steps` iterations of the notebook's training loop (data loading included)."""
    loss_fn = nn.CrossEntropyLoss()
    net.train()
    for _ in range(steps):
        x, y = next(batch_iter)
        optimizer.zero_grad()
        loss = loss_fn(net(x.view(-1, 28 * 28)), y)
        loss.item()
        loss.backward()
        optimizer.step()
    return steps


@as_written
def train_epoch(net: nn.Module, optimizer, loader) -> int:
    """One full pass over the loader; returns the number of steps."""
    steps = 0
    loss_fn = nn.CrossEntropyLoss()
    net.train()
    for x, y in loader:
        optimizer.zero_grad()
        loss = loss_fn(net(x.view(-1, 28 * 28)), y)
        loss.item()
        loss.backward()
        optimizer.step()
        steps += 1
    return steps


@as_written
def test(net: nn.Module, test_loader) -> tuple[float, list[int]]:
    """The notebook's test(): batches of 10, then a Python loop over every sample."""
    correct = total = 0
    wrong = [0] * 10
    with torch.no_grad():
        for x, y in test_loader:
            out = net(x.view(-1, 28 * 28))
            for idx, i in enumerate(out):
                if torch.argmax(i) == y[idx]:
                    correct += 1
                else:
                    wrong[y[idx]] += 1
                total += 1
    return correct / total, wrong
