"""Helpers shared by several test files: hypothesis example counts, hostile objects, an ID-overlap recall, a
collection that speaks only the protocol.

Fixtures live in conftest.py; plain functions and classes that tests import live here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np

# ------------------------------------------------------------------------------------------------ hypothesis
#: ``MILVUS_LAB_HYPOTHESIS=ci`` (what .ci/run sets) runs every property test with its full example count;
#: the default ``dev`` profile runs at most DEV_EXAMPLES, so a local ``pytest -m "not slow"`` stays quick
HYPOTHESIS_PROFILE = os.environ.get("MILVUS_LAB_HYPOTHESIS", "dev")
DEV_EXAMPLES = 10


def examples(full: int) -> int:
    """Examples for a property test: ``full`` under the ``ci`` profile, at most DEV_EXAMPLES under ``dev``."""
    return full if HYPOTHESIS_PROFILE == "ci" else min(full, DEV_EXAMPLES)


# ------------------------------------------------------------------------------------------------ recall oracle
def numpy_recall(found: np.ndarray, base: np.ndarray, queries: np.ndarray, k: int) -> float:
    """k-recall@k (L2) against float64 NumPy ground truth, by ID overlap (no ties in continuous random data)."""
    d = ((queries[:, None, :].astype(np.float64) - base[None, :, :]) ** 2).sum(-1)
    truth = np.argsort(d, axis=1)[:, :k]
    return float(np.mean([len(set(f[:k]) & set(t)) / k for f, t in zip(found.tolist(), truth.tolist())]))


# ------------------------------------------------------------------------------------------------ protocol only
class ProtocolCollection:
    """A collection that speaks only :class:`milvus_lab.protocol.IndexedCollection`: its attributes and each of
    its verbs forwarded to ``inner``, and nothing else (no change signal, no ``memory_bytes``, no engine
    internals), so code that reaches past the protocol fails on it. ``profile`` replaces the inner collection's
    spec profile (a server's rules over an in-memory collection, say); a subclass overrides a verb to count or
    fail it."""

    def __init__(self, inner: Any, profile: str | None = None) -> None:
        self._inner = inner
        self.name, self.dimension, self.metric = inner.name, inner.dimension, inner.metric
        self.profile = inner.profile if profile is None else profile

    def insert(self, records: Any) -> Any:
        return self._inner.insert(records)

    def count(self) -> int:
        return self._inner.count()

    def create_index(self, index_type: Any, params: Mapping[str, Any] | None = None) -> Any:
        return self._inner.create_index(index_type, params)

    def drop_index(self) -> None:
        self._inner.drop_index()

    def describe_index(self) -> Any:
        return self._inner.describe_index()

    def search(self, query_records: Any, top_k: int = 10, params: Mapping[str, Any] | None = None) -> Any:
        return self._inner.search(query_records, top_k, params)

    def stats(self) -> dict[str, Any]:
        return self._inner.stats()


# ------------------------------------------------------------------------------------------------ hostile objects
class Boom(Exception):
    """What a hostile dunder raises: any escape of it is a bug."""


class EvilIndex:
    """Claims to be an Integral, but converting it raises."""

    def __index__(self) -> int:
        raise Boom("__index__")

    def __int__(self) -> int:
        raise Boom("__int__")

    def __repr__(self) -> str:
        return "<EvilIndex>"


Integral.register(EvilIndex)


class EvilIntSubclass(int):
    """A real int whose conversions and comparisons raise."""

    def __index__(self) -> int:
        raise Boom("__index__")

    def __int__(self) -> int:
        raise Boom("__int__")

    def __eq__(self, other: object) -> bool:
        raise Boom("__eq__")

    def __lt__(self, other: object) -> bool:
        raise Boom("__lt__")

    __hash__ = int.__hash__


class EvilEverything:
    """Every conversion, comparison and protocol method raises (``repr`` and ``str`` too)."""

    def __len__(self) -> int:
        raise Boom("__len__")

    def __eq__(self, other: object) -> bool:
        raise Boom("__eq__")

    def __hash__(self) -> int:
        raise Boom("__hash__")

    def __repr__(self) -> str:
        raise Boom("__repr__")

    def __str__(self) -> str:
        raise Boom("__str__")

    def __bool__(self) -> bool:
        raise Boom("__bool__")

    def __iter__(self):
        raise Boom("__iter__")

    def __float__(self) -> float:
        raise Boom("__float__")

    def __int__(self) -> int:
        raise Boom("__int__")

    def __index__(self) -> int:
        raise Boom("__index__")

    def __fspath__(self) -> str:
        raise Boom("__fspath__")

    @property
    def name(self) -> str:
        raise Boom("name")


class EvilStr(str):
    """A str that cannot be compared, hashed, upper-cased or converted to str."""

    def __eq__(self, other: object) -> bool:
        raise Boom("__eq__")

    def __hash__(self) -> int:
        raise Boom("__hash__")

    def upper(self) -> str:
        raise Boom("upper")

    def __str__(self) -> str:
        raise Boom("__str__")


class EvilStrKey(str):
    """Usable as a dict key (hashes like a str), but comparing or upper-casing it raises."""

    __hash__ = str.__hash__

    def __eq__(self, other: object) -> bool:
        raise Boom("__eq__")

    def upper(self) -> str:
        raise Boom("upper")


class EvilMapping(dict):
    """A dict whose ``items``, ``keys`` and iteration raise."""

    def items(self):
        raise Boom("items")

    def keys(self):
        raise Boom("keys")

    def __iter__(self):
        raise Boom("__iter__")


class UnhashableKeys(Mapping):
    """A mapping whose parameter names are lists (a dict cannot hold them, a Mapping can)."""

    def __getitem__(self, key: Any) -> int:
        return 16

    def __iter__(self):
        return iter([["nlist"], {"m": 1}])

    def __len__(self) -> int:
        return 2


class NameIsNotStr:
    """An object whose ``name`` is an int."""

    name = 12345


# ------------------------------------------------------------------------------------------------ hostile files
def make_hostile_files(tmp: Path, dim: int = 8) -> list[Path]:
    """Files a user may hand the lab by mistake, or damaged ones, written into ``tmp`` (a few paths are left
    missing on purpose); vector files have ``dim`` columns."""
    made = []

    def put(name: str, data: bytes) -> None:
        path = tmp / name
        path.write_bytes(data)
        made.append(path)

    put("text.npy", b"hello")  # a 5-byte text file named .npy
    put("empty.npy", b"")
    put("empty.fvecs", b"")
    put("empty.csv", b"")
    put("empty.parquet", b"")
    put("empty.hdf5", b"")
    put("garbage.hdf5", b"\x89HDF\r\n\x1a\n" + b"\x00" * 40)
    put("garbage.h5", os.urandom(200))
    put("text.csv", b"a,b\n1,x\n")
    put("garbage.parquet", b"PAR1" + os.urandom(50) + b"PAR1")
    put("short.fvecs", b"\x08\x00")
    put("negdim.fvecs", np.array([-5], "<i4").tobytes() + b"\x00" * 20)
    put("huge_dim.fvecs", np.array([2**30], "<i4").tobytes() + b"\x00" * 20)
    good = np.zeros((3, 1 + dim), "<f4")
    good[:, 0] = np.array([dim] * 3, "<i4").view("<f4")
    put("truncated.fvecs", good.tobytes()[:-3])
    mixed = good.copy()
    mixed[1, 0] = np.array([dim - 1], "<i4").view("<f4")[0]
    put("mixed.fvecs", mixed.tobytes())
    put("truncated.bvecs", b"\x04\x00\x00\x00\x01\x02")
    put("unknown.txt", b"1 2 3")
    put("noext", b"1 2 3")
    np.save(tmp / "object.npy", np.array([{"a": 1}, [1, 2]], dtype=object), allow_pickle=True)
    made.append(tmp / "object.npy")
    np.save(tmp / "one_d.npy", np.arange(5, dtype=np.float32))
    made.append(tmp / "one_d.npy")
    np.save(tmp / "three_d.npy", np.zeros((2, 2, 2), np.float32))
    made.append(tmp / "three_d.npy")
    np.save(tmp / "strings.npy", np.array(["a", "b"]))
    made.append(tmp / "strings.npy")
    np.save(tmp / "complex.npy", np.ones((4, 2), np.complex64))
    made.append(tmp / "complex.npy")
    np.save(tmp / "nan.npy", np.full((4, 2), np.nan, np.float32))
    made.append(tmp / "nan.npy")
    np.save(tmp / "zero_rows.npy", np.zeros((0, 4), np.float32))
    made.append(tmp / "zero_rows.npy")
    full = tmp / "cut.npy"
    np.save(full, np.ones((50, 4), np.float32))
    full.write_bytes(full.read_bytes()[:-7])
    made.append(full)
    (tmp / "folder.npy").mkdir()
    made.append(tmp / "folder.npy")
    (tmp / "folder.fvecs").mkdir()
    made.append(tmp / "folder.fvecs")
    (tmp / "folder.hdf5").mkdir()
    made.append(tmp / "folder.hdf5")
    made.append(tmp / "missing.npy")
    made.append(tmp / "missing.hdf5")
    return made
