"""Reading safetensors files (through the ``safetensors`` package) and writing them tensor by tensor.

The writer is ours because the format is simple (a little-endian u64 header
length, a JSON header, then the raw bytes of each tensor back to back) and
because ``safetensors.torch.save_file`` needs every tensor in memory at once,
whereas converting a checkpoint should hold one tensor at a time.
"""

from __future__ import annotations

import ctypes
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import torch

INDEX_NAME = "model.safetensors.index.json"
SINGLE_NAME = "model.safetensors"

DTYPE_NAMES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.float8_e4m3fn: "F8_E4M3", torch.float8_e5m2: "F8_E5M2",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint64: "U64", torch.uint32: "U32", torch.uint16: "U16", torch.uint8: "U8", torch.bool: "BOOL",
}
DTYPES = {v: k for k, v in DTYPE_NAMES.items()}


def require_safetensors():
    """The ``safetensors`` module, or an ImportError saying how to install it."""
    try:
        import safetensors
    except ImportError as exc:
        raise ImportError("reading safetensors checkpoints needs the 'safetensors' package: "
                          "pip install 'nvfp4-core[checkpoints]'") from exc
    return safetensors


@dataclass(frozen=True)
class TensorInfo:
    """Where a tensor lives and what it is, read from the header only."""

    name: str
    file: Path
    dtype: torch.dtype
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n * torch.empty((), dtype=self.dtype).element_size()


def checkpoint_files(path) -> list[Path]:
    """The safetensors files of a checkpoint: a directory (sharded or not), an index, or one file."""
    path = Path(path)
    if path.is_dir():
        if (path / INDEX_NAME).is_file():
            return index_files(path / INDEX_NAME)
        if (path / SINGLE_NAME).is_file():
            return [path / SINGLE_NAME]
        found = sorted(path.glob("*.safetensors"))
        if len(found) == 1:
            return found
        raise FileNotFoundError(f"{path} holds neither {INDEX_NAME} nor {SINGLE_NAME}"
                                + (f" (and {len(found)} other .safetensors files: which one?)" if found else ""))
    if path.is_file():
        if path.name.endswith(".index.json"):
            return index_files(path)
        if path.suffix == ".safetensors":
            return [path]
        raise ValueError(f"{path} is neither a .safetensors file, a safetensors index nor a directory")
    raise FileNotFoundError(f"checkpoint path {path} does not exist")


def index_files(index: Path) -> list[Path]:
    with open(index) as f:
        weight_map = json.load(f).get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise ValueError(f"{index} has no 'weight_map'")
    files = []
    for name in dict.fromkeys(weight_map.values()):  # first-seen order, no duplicates
        p = index.parent / name
        if not p.is_file():
            raise FileNotFoundError(f"{index} names shard {name}, which does not exist")
        files.append(p)
    return files


def read_infos(files: list[Path]) -> dict[str, TensorInfo]:
    """Every tensor's name, file, dtype and shape, from the headers (no tensor data read)."""
    safetensors = require_safetensors()
    infos: dict[str, TensorInfo] = {}
    for file in files:
        with safetensors.safe_open(str(file), framework="pt", device="cpu") as f:
            for name in f.keys():  # noqa: SIM118 (safe_open is not a dict)
                sl = f.get_slice(name)
                dtype = DTYPES.get(sl.get_dtype())
                if dtype is None:
                    raise ValueError(f"tensor {name!r} in {file} has dtype {sl.get_dtype()}, unknown to nvfp4")
                if name in infos:
                    raise ValueError(f"tensor {name!r} appears in both {infos[name].file} and {file}")
                infos[name] = TensorInfo(name, file, dtype, tuple(sl.get_shape()))
    return infos


def iter_tensors(files: list[Path], names=None):
    """``(name, tensor)`` for each tensor (or those in ``names``), one at a time, file by file."""
    safetensors = require_safetensors()
    for file in files:
        with safetensors.safe_open(str(file), framework="pt", device="cpu") as f:
            for name in f.keys():  # noqa: SIM118 (safe_open is not a dict)
                if names is None or name in names:
                    yield name, f.get_tensor(name)


class StreamingWriter:
    """Write one safetensors file whose tensors are declared up front and written in that order."""

    def __init__(self, path, specs: list[tuple[str, torch.dtype, tuple[int, ...]]],
                 metadata: dict[str, str] | None = None):
        header: dict = {}
        offset = 0
        self._order = []
        for name, dtype, shape in specs:
            if name in header:
                raise ValueError(f"tensor {name!r} declared twice")
            if dtype not in DTYPE_NAMES:
                raise TypeError(f"tensor {name!r}: dtype {dtype} cannot be stored in safetensors")
            size = TensorInfo(name, Path(), dtype, tuple(shape)).nbytes
            header[name] = {"dtype": DTYPE_NAMES[dtype], "shape": list(shape), "data_offsets": [offset, offset + size]}
            self._order.append((name, dtype, tuple(shape)))
            offset += size
        if metadata:
            header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
        blob = json.dumps(header, separators=(",", ":")).encode()
        blob += b" " * (-len(blob) % 8)  # the data starts 8-byte aligned, as safetensors writes it
        self.path = Path(path)
        self.nbytes = offset
        self._tmp = self.path.with_name(self.path.name + ".partial")
        self._f = open(self._tmp, "wb")  # noqa: SIM115 (closed by close()/abort(), or the with block)
        self._f.write(struct.pack("<Q", len(blob)))
        self._f.write(blob)
        self._next = 0

    def write(self, name: str, tensor: torch.Tensor) -> None:
        if self._next >= len(self._order):
            raise ValueError(f"tensor {name!r} was not declared")
        want_name, dtype, shape = self._order[self._next]
        if name != want_name:
            raise ValueError(f"tensors must be written in declared order: expected {want_name!r}, got {name!r}")
        if tensor.dtype != dtype or tuple(tensor.shape) != shape:
            raise ValueError(f"tensor {name!r} was declared {dtype} {list(shape)}, "
                             f"got {tensor.dtype} {list(tensor.shape)}")
        raw = tensor.detach().to("cpu").contiguous()
        nbytes = raw.numel() * raw.element_size()
        if nbytes:
            # Raw memory through ctypes: numpy is not a dependency (and knows neither bf16 nor fp8).
            # safetensors is little-endian, as is every machine torch supports here.
            self._f.write(ctypes.string_at(raw.data_ptr(), nbytes))
        self._next += 1

    def close(self) -> None:
        if self._next != len(self._order):
            missing = self._order[self._next][0]
            self.abort()
            raise ValueError(f"{self.path}: tensor {missing!r} and later ones were declared but never written")
        self._f.close()
        os.replace(self._tmp, self.path)  # never leave a truncated file under the final name

    def abort(self) -> None:
        self._f.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()


def shard_names(count: int) -> list[str]:
    if count == 1:
        return [SINGLE_NAME]
    return [f"model-{i + 1:05d}-of-{count:05d}.safetensors" for i in range(count)]


def write_index(directory: Path, weight_map: dict[str, str], total_size: int) -> None:
    with open(directory / INDEX_NAME, "w") as f:
        json.dump({"metadata": {"total_size": total_size}, "weight_map": dict(sorted(weight_map.items()))},
                  f, indent=2)
        f.write("\n")


def remove_stale_outputs(directory: Path) -> None:
    """Delete a previous save's index and shards, so an old index cannot shadow the new files."""
    (directory / INDEX_NAME).unlink(missing_ok=True)
    (directory / SINGLE_NAME).unlink(missing_ok=True)
    for p in directory.glob("model-*-of-*.safetensors"):
        p.unlink()
