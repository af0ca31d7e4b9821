"""Named tensors in the files other code reads: PyTorch (`.pt`), safetensors and numpy `.npz`.

The safetensors format is small enough to write and read here (an 8-byte little-endian header
length, a JSON header naming each tensor's dtype, shape and byte range, then the raw
little-endian bytes), so it needs no extra package; files written here load with
`safetensors.torch.load_file`, and that package's files load here.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import torch

from .errors import ConfigError

FORMATS = ("pt", "safetensors", "npz")
_SUFFIXES = {".pt": "pt", ".pth": "pt", ".bin": "pt", ".safetensors": "safetensors", ".npz": "npz"}
_ST_DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
              torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
              torch.uint8: "U8", torch.bool: "BOOL"}
_ST_TORCH = {v: k for k, v in _ST_DTYPES.items()}


def format_of(path: Path) -> str:
    """The format a file name implies (ConfigError for an unknown suffix)."""
    fmt = _SUFFIXES.get(Path(path).suffix.lower())
    if fmt is None:
        raise ConfigError(f"cannot tell the format of {path} from its suffix",
                          f"use one of {', '.join(sorted(_SUFFIXES))}")
    return fmt


def write_tensors(path: Path, tensors: dict[str, torch.Tensor], fmt: str,
                  metadata: dict[str, str] | None = None) -> None:
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    if fmt == "pt":
        torch.save(tensors, path)
    elif fmt == "npz":
        with open(path, "wb") as f:
            np.savez(f, **{k: v.numpy() for k, v in tensors.items()})
    elif fmt == "safetensors":
        _write_safetensors(path, tensors, metadata or {})
    else:
        raise ConfigError(f"unknown format {fmt!r}", f"use one of {', '.join(FORMATS)}")


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """A flat {name: tensor} from a file; a .pt file may also hold {"state_dict": {...}}."""
    fmt = format_of(path)
    try:
        if fmt == "pt":
            data = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
                data = data["state_dict"]
        elif fmt == "npz":
            with np.load(path, allow_pickle=False) as f:
                data = {k: torch.from_numpy(f[k].copy()) for k in f.files}
        else:
            data = _read_safetensors(path)
    except Exception as exc:  # noqa: BLE001 - torch.load alone raises half a dozen kinds on a bad file
        raise ConfigError(f"cannot read {path} as a {fmt} file of tensors ({' '.join(str(exc).split())[:200]})",
                          "give a state_dict saved with torch.save, safetensors or numpy.savez") from None
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise ConfigError(f"{path} does not hold a flat dict of named tensors (a state_dict)",
                          "save model.state_dict() (torch.save), or a dict of arrays (numpy.savez)")
    return dict(data)


def _write_safetensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    header: dict[str, object] = {"__metadata__": metadata} if metadata else {}
    blobs, offset = [], 0
    for name, t in tensors.items():
        data = t.numpy().astype(t.numpy().dtype.newbyteorder("<"), copy=False).tobytes() \
            if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes()
        header[name] = {"dtype": _ST_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the header is padded to 8 bytes, as the reference writer does
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    raw = Path(path).read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + length])
    body = memoryview(raw)[8 + length:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        dtype = _ST_TORCH[info["dtype"]]
        chunk = bytearray(body[start:end])
        if dtype == torch.bfloat16:
            t = torch.frombuffer(chunk, dtype=torch.int16).view(torch.bfloat16) if chunk else torch.empty(0, dtype=dtype)
        else:
            t = torch.frombuffer(chunk, dtype=dtype) if chunk else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(info["shape"]).clone()
    return out
