"""Tiny synthetic MNIST files for the loader's tests: four small IDX files with MNIST's names,
written independently of nn_helpers' own parser."""

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np

import nn_helpers as nn

NAMES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def idx_bytes(array, type_code=0x08):
    """The IDX encoding of ``array``, written independently of nn.parse_idx."""
    big_endian = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    array = np.asarray(array)
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(big_endian[type_code]).tobytes()


def leftovers(folder: Path):
    """Names of the files in ``folder`` (none when it does not exist)."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


class TinyMNIST:
    """Four small IDX files with MNIST's names, registered in nn.MNIST_FILES."""

    def __init__(self, monkeypatch):
        rng = np.random.default_rng(1)
        # non-square images so that a transposed reshape shows up
        self.arrays = {
            NAMES[0]: rng.integers(0, 256, size=(7, 4, 3), dtype=np.uint8),
            NAMES[1]: rng.integers(0, 10, size=7, dtype=np.uint8),
            NAMES[2]: rng.integers(0, 256, size=(3, 4, 3), dtype=np.uint8),
            NAMES[3]: rng.integers(0, 10, size=3, dtype=np.uint8),
        }
        self.raw = {name: idx_bytes(a) for name, a in self.arrays.items()}
        self.gz = {name: gzip.compress(raw, mtime=0) for name, raw in self.raw.items()}
        self.sha = {name: hashlib.sha256(raw).hexdigest() for name, raw in self.raw.items()}
        monkeypatch.setattr(nn, "MNIST_FILES", {
            name: (a.shape, self.sha[name]) for name, a in self.arrays.items()})

    def write(self, folder: Path, names=NAMES):
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            (folder / name).write_bytes(self.gz[name])
        return folder

    def check(self, arrays):
        assert len(arrays) == 4
        for name, got in zip(NAMES, arrays):
            want = self.arrays[name]
            assert got.dtype == np.uint8 and got.shape == want.shape, name
            np.testing.assert_array_equal(got, want, err_msg=name)
