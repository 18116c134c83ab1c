"""Peak memory of reading hostile uploads: the server's cost of one student's worst file.

Each case runs in a fresh Python process that imports torch and lora_core (as the server has), reads
the file with `lora_core.read_upload`, and reports the process's peak RSS (VmHWM) before and after the
read. The zip bomb is 1 MiB of deflated zeros that inflate to 1 GiB, its headers claiming 1,000 bytes.

    python scripts/upload_memory.py
"""
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MiB = 2**20


def lying_zip(name: str, inflated: int, claimed: int) -> bytes:
    """A one-entry zip whose member inflates to `inflated` zero bytes while its headers claim `claimed`."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate, as zip stores it
    block = bytes(MiB)
    data = b"".join(packer.compress(block[:min(MiB, inflated - at)]) for at in range(0, inflated, MiB))
    data += packer.flush()
    encoded = name.encode()
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0, 0, len(data), claimed, len(encoded), 0)
    central = struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, 0, len(data), claimed,
                          len(encoded), 0, 0, 0, 0, 0, 0)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central) + len(encoded),
                      len(local) + len(encoded) + len(data), 0)
    return local + encoded + data + central + encoded + end


def many_entries_zip(count: int) -> bytes:
    """A zip of `count` empty members: its central directory alone is what a reader must hold."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for i in range(count):
            zf.writestr(f"{i:x}", b"")
    return buffer.getvalue()


CHILD = """
import sys, time
import lora_core
from lora_core.adapter_zips import read_upload
def hwm():
    return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')) / 1024
blob = open(sys.argv[1], 'rb').read()
before = hwm()
start = time.perf_counter()
try:
    read_upload(sys.argv[2], blob)
    outcome = 'accepted'
except lora_core.AdapterError as err:
    outcome = str(err)
print(before, hwm(), time.perf_counter() - start, outcome, sep='\\t')
"""


def measure(path: Path, name: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), name], cwd=ROOT, capture_output=True,
                         text=True, timeout=300, check=True).stdout.strip().split("\t")
    before, after, seconds, outcome = float(out[0]), float(out[1]), float(out[2]), out[3]
    return {"file": name, "bytes": path.stat().st_size, "peak_rss_before_mb": round(before, 1),
            "peak_rss_after_mb": round(after, 1), "peak_rise_mb": round(after - before, 1),
            "seconds": round(seconds, 3), "outcome": outcome}


def main() -> None:
    import tempfile

    cases = {
        "bomb.zip": lying_zip("adapter.safetensors", 1024 * MiB, 1000),
        "entries.zip": many_entries_zip(150_000),  # 12 MiB, under the upload limit
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, blob in cases.items():
            path = Path(tmp) / name
            path.write_bytes(blob)
            print(json.dumps(measure(path, name)), flush=True)


if __name__ == "__main__":
    main()
