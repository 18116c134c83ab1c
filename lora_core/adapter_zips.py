"""Adapters through the browser: a zip to download, and an uploaded .safetensors or .zip read back.

A zip holds either LoRA Lab's adapter.safetensors or PEFT's two files. An upload is bounded before it is
inflated (size, number of entries, each member's bytes), and every refusal says what is wrong with the file.
"""
import io
import logging
import tempfile
import zipfile
import zlib
from pathlib import Path

from torch import nn

from .adapter_files import (
    ADAPTER_FILE,
    MAX_ADAPTER_BYTES,
    PEFT_CONFIG,
    PEFT_WEIGHTS,
    adapter_bytes,
    checked_size,
    read_adapter_bytes,
)
from .adapters import Adapter, AdapterError, shown
from .peft_files import export_peft, read_peft_files

MAX_ZIP_ENTRIES = 64  # an adapter zip holds one or two files; thousands of entries are a zip built to hurt

log = logging.getLogger(__name__)


def adapter_zip(model: nn.Module, peft_format: bool = False) -> bytes:
    """A zip holding either adapter.safetensors or PEFT's adapter_model.safetensors + adapter_config.json."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        if peft_format:
            with tempfile.TemporaryDirectory() as tmp:
                export_peft(model, tmp)
                for name in (PEFT_WEIGHTS, PEFT_CONFIG):
                    zf.write(Path(tmp) / name, name)
        else:
            zf.writestr(ADAPTER_FILE, adapter_bytes(model))
    return buffer.getvalue()


def _zip_entry_count(blob: bytes) -> int:
    """Entries the zip's end record announces (0 if it has none: zipfile then says it is no zip)."""
    end = blob.rfind(b"PK\x05\x06", max(0, len(blob) - 22 - 0xFFFF))  # the record, then a comment ≤ 64 KiB
    return int.from_bytes(blob[end + 10:end + 12], "little") if end >= 0 else 0


def _zip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """A member's bytes, inflated no further than an adapter can be whatever its header claims."""
    if info.flag_bits & 0x1:
        raise AdapterError(f"{shown(info.filename)} in the zip is password-protected; zip the adapter "
                           "without a password")
    with zf.open(info) as member:
        data = member.read(MAX_ADAPTER_BYTES + 1)  # inflates in bounded chunks, stops at the cap
    if len(data) > MAX_ADAPTER_BYTES:
        raise AdapterError("the zip unpacks to more than an adapter can be")
    return data


def _read_zip(blob: bytes) -> Adapter:
    if _zip_entry_count(blob) > MAX_ZIP_ENTRIES:
        raise AdapterError(f"the zip holds more than {MAX_ZIP_ENTRIES} files; an adapter zip holds one or two")
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as zf:
            members = {Path(i.filename).name: i for i in zf.infolist() if not i.is_dir()}
            if sum(i.file_size for i in members.values()) > MAX_ADAPTER_BYTES:
                raise AdapterError("the zip unpacks to more than an adapter can be")
            if PEFT_CONFIG in members and PEFT_WEIGHTS in members:
                return read_peft_files(_zip_member(zf, members[PEFT_CONFIG]), _zip_member(zf, members[PEFT_WEIGHTS]))
            if ADAPTER_FILE in members:
                return read_adapter_bytes(_zip_member(zf, members[ADAPTER_FILE]))
            if PEFT_WEIGHTS in members:
                raise AdapterError(f"the zip holds PEFT's {PEFT_WEIGHTS} but not its {PEFT_CONFIG}, which "
                                   "says the rank, alpha and target layers: zip the whole adapter folder")
    except (zipfile.BadZipFile, zlib.error, EOFError):
        raise AdapterError("not a readable zip: it is damaged, cut short, or not a zip file") from None
    except NotImplementedError:
        raise AdapterError("the zip is compressed with a method this server cannot read; use ordinary "
                           "(deflate) compression") from None
    raise AdapterError(f"the zip holds neither {ADAPTER_FILE} nor {PEFT_CONFIG} with {PEFT_WEIGHTS}")


def read_upload(filename: str, blob: bytes) -> Adapter:
    """An uploaded .safetensors or .zip (either format) as an Adapter, or AdapterError saying why not.

    Every refusal says what is wrong with the file; a failure nobody foresaw is logged on the server
    and reported in general words (its details are no business of the page).
    """
    checked_size(len(blob))
    try:
        return _read_zip(blob) if filename.lower().endswith(".zip") else read_adapter_bytes(blob)
    except AdapterError:
        raise
    except Exception:
        log.exception("Reading the uploaded file %r failed unexpectedly", filename[:200])
        raise AdapterError("the file could not be read as an adapter: it is damaged, or not in a format "
                           "LoRA Lab knows") from None
