"""Claims on run keys in a folder that several app servers share, so that two servers asked for the same
run compute it once: the first takes the claim and trains, the others wait for its file.

What it needs from the filesystem (a local disk, a Docker volume, NFS v4 with close-to-open consistency):
an exclusive create (O_CREAT | O_EXCL) and an atomic rename within one folder — the run store's writes
need the rename too (lora_core.checkpoints). No POSIX locks (flock/fcntl), which some network filesystems
ignore. A claim lapses when its owner stops renewing it (a crashed or killed server): the claim file's
modification time is the heartbeat, so the servers' clocks must agree within a fraction of `ttl_s`.
A claim of a process on this host that has ended lapses at once.
"""
import json
import os
import re
import socket
import threading
import time
import uuid
from pathlib import Path

KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")  # a plain file name on every filesystem
TTL_S = 30.0  # a claim not renewed for this long is taken over


def _claim_path(folder: Path, key: str) -> Path:
    if not isinstance(key, str) or not KEY.fullmatch(key):
        raise ValueError(f"a key is 1–200 letters, digits, '.', '_' or '-', not starting with a dot; got {key!r}")
    return Path(folder) / f".{key}.claim"


def _owner(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


class Claim:
    """The right to compute one key, held by this process until `release` (renewed meanwhile)."""

    def __init__(self, path: Path, token: str, ttl_s: float):
        self.path, self.token, self.ttl_s = path, token, ttl_s
        self._released = threading.Event()
        threading.Thread(target=self._renew_until_released, name=f"claim {path.name}", daemon=True).start()

    def __repr__(self) -> str:
        return f"Claim({self.path.name!r}, {'released' if self._released.is_set() else 'held'})"

    def held(self) -> bool:
        """Whether the claim file is still this one's (another server may have taken over a lapsed one)."""
        return _owner(self.path).get("token") == self.token

    def _renew_until_released(self) -> None:
        while not self._released.wait(self.ttl_s / 3):
            try:
                os.utime(self.path)  # the heartbeat: a fresh modification time
            except OSError:  # taken over or removed: nothing left to renew
                return

    def release(self) -> None:
        self._released.set()
        if self.held():
            self.path.unlink(missing_ok=True)


def claim(folder, key: str, ttl_s: float = TTL_S) -> Claim | None:
    """A Claim on `key` for this process, or None while another live process holds it; a lapsed claim is
    taken over."""
    path = _claim_path(folder, key)
    token = uuid.uuid4().hex
    owner = json.dumps({"token": token, "pid": os.getpid(), "host": socket.gethostname(), "since": time.time()})
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):  # a second try after clearing a lapsed claim
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if not lapsed(folder, key, ttl_s):
                return None
            stale = path.with_name(f"{path.name}.{token}.stale")
            try:
                os.rename(path, stale)  # atomic: of two servers clearing it, one succeeds
            except FileNotFoundError:
                continue
            stale.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(owner)
            f.flush()
            os.fsync(f.fileno())
        return Claim(path, token, ttl_s)
    return None


def lapsed(folder, key: str, ttl_s: float = TTL_S) -> bool:
    """Whether nobody holds a live claim on `key`: none, one not renewed for `ttl_s`, or one of an ended
    process on this host."""
    path = _claim_path(folder, key)
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return True
    owner = _owner(path)
    if owner.get("host") == socket.gethostname() and isinstance(owner.get("pid"), int):
        try:
            os.kill(owner["pid"], 0)
        except ProcessLookupError:
            return True  # its process ended without releasing it
        except PermissionError:
            pass  # alive, someone else's
    return age > ttl_s


def sweep_lapsed(folder, ttl_s: float = TTL_S) -> int:
    """Delete the lapsed claims in `folder` (a killed server's) and the leftovers of clearing one; how many.
    A live claim, this server's or another's, is left alone."""
    removed = 0
    for path in Path(folder).glob(".*.claim"):
        key = path.name[1:-len(".claim")]
        if KEY.fullmatch(key) and lapsed(folder, key, ttl_s):
            stale = path.with_name(f"{path.name}.{uuid.uuid4().hex}.stale")
            try:
                os.rename(path, stale)  # atomic, as in claim(): another server may be taking it over now
            except FileNotFoundError:
                continue
            stale.unlink(missing_ok=True)
            removed += 1
    for leftover in Path(folder).glob(".*.claim.*.stale"):
        try:
            old = time.time() - leftover.stat().st_mtime > ttl_s
        except FileNotFoundError:
            continue
        if old:
            leftover.unlink(missing_ok=True)
            removed += 1
    return removed
