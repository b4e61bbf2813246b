"""The structure of the faiss files milvus_lab writes, checked before faiss's reader sees them.

faiss's reader allocates what a file's size fields say before it reads the data (a changed byte in a
vector size can ask for gigabytes) and trusts NSG graph rows and IVF ids. :func:`check_file` walks a file
the way ``faiss.read_index`` would, for the formats ``save`` writes: IndexFlat (``IxF2`` / ``IxFI``),
IndexIVFFlat (``IwFl``), IndexIVFScalarQuantizer (``IwSq``), IndexIVFPQ (``IwPQ``), IndexNSGFlat
(``INSf``), IndexBinaryFlat (``IBxF``) and IndexBinaryIVF (``IBwF``). Every size must fit in the bytes
left, dimensions, row counts and metrics must be the expected ones, IVF cells must list every row
position exactly once and NSG links must point at nodes; the file must end exactly where the index does.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from .base import FAISS_METRIC, refuse

#: float32 / int64 / size_t sizes in faiss files
_F32, _I64 = 4, 8
_MAX_PQ_BITS = 16
_SQ_8BIT = int(faiss.ScalarQuantizer.QT_8bit)


@dataclass
class Expected:
    """What the saved index must be: its tag, dimension (bits for binary), metric and build params."""

    tag: bytes
    dim: int
    metric: str
    params: dict[str, int] = field(default_factory=dict)


class _Cursor:
    def __init__(self, data: bytes, path: Path):
        self.data, self.at, self.path = data, 0, path

    def take(self, fmt: str) -> tuple[Any, ...]:
        layout = struct.Struct("<" + fmt)
        if self.at + layout.size > len(self.data):
            raise refuse(self.path, "the file ends inside a header")
        values = layout.unpack_from(self.data, self.at)
        self.at += layout.size
        return values

    def one(self, fmt: str) -> Any:
        return self.take(fmt)[0]

    def array(self, dtype: str, count: int) -> np.ndarray:
        size = np.dtype(dtype).itemsize
        if count < 0 or self.at + count * size > len(self.data):
            raise refuse(self.path, f"a block of {count} values runs past the end of the file")
        out = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.at)
        self.at += count * size
        return out

    def vector(self, dtype: str) -> np.ndarray:
        return self.array(dtype, self.one("Q"))

    def fail(self, what: str) -> None:
        raise refuse(self.path, what)


def _float_header(cur: _Cursor, exp: Expected) -> int:
    d, ntotal, _, _, trained, metric = cur.take("iqqqBi")
    if d != exp.dim or metric != FAISS_METRIC[exp.metric] or trained != 1 or ntotal < 0:
        cur.fail(f"header (dim {d}, metric {metric}, rows {ntotal}) is not a trained index of dim {exp.dim} "
                 f"and metric {exp.metric}")
    return ntotal


def _binary_header(cur: _Cursor, exp: Expected) -> int:
    d, code_size, ntotal, trained, _ = cur.take("iiqBi")
    if d != exp.dim or code_size * 8 != d or trained != 1 or ntotal < 0:
        cur.fail(f"binary header (bits {d}, code size {code_size}, rows {ntotal}) does not match {exp.dim} bits")
    return ntotal


def _flat(cur: _Cursor, exp: Expected, binary: bool) -> int:
    tags = (b"IBxF",) if binary else ({"L2": b"IxF2", "IP": b"IxFI"}[exp.metric],)
    if cur.one("4s") not in tags:
        cur.fail(f"expected a faiss {tags[0].decode()} index")
    ntotal = _binary_header(cur, exp) if binary else _float_header(cur, exp)
    values = cur.vector("u1" if binary else "<f4")
    if len(values) != ntotal * (exp.dim // 8 if binary else exp.dim):
        cur.fail(f"holds {len(values)} vector values for {ntotal} rows")
    if not binary and not np.isfinite(values).all():
        cur.fail("holds NaN or infinite vector values")
    return ntotal


def _ivf_header(cur: _Cursor, exp: Expected, binary: bool) -> tuple[int, int]:
    ntotal = _binary_header(cur, exp) if binary else _float_header(cur, exp)
    nlist, _ = cur.take("QQ")
    if nlist != exp.params["nlist"]:
        cur.fail(f"holds {nlist} IVF cells, expected nlist={exp.params['nlist']}")
    if _flat(cur, exp, binary) != nlist:
        cur.fail("the IVF quantizer does not hold one centroid per cell")
    kind = cur.one("B")
    if kind != 0 or len(cur.vector("<i8")):
        cur.fail("an IVF direct map that milvus_lab never writes")
    return ntotal, nlist


def _inverted_lists(cur: _Cursor, ntotal: int, nlist: int, code_size: int) -> None:
    tag, lists, codes = cur.take("4sQQ")
    if tag != b"ilar" or lists != nlist or codes != code_size:
        cur.fail("the IVF inverted lists disagree with the index's cells or code size")
    kind = cur.one("4s")
    if kind == b"full":
        sizes = cur.vector("<u8")
        if len(sizes) != nlist:
            cur.fail("the IVF list sizes do not cover every cell")
    elif kind == b"sprs":
        pairs = cur.vector("<u8")
        if len(pairs) % 2 or (len(pairs) and pairs[0::2].max() >= nlist):
            cur.fail("the IVF list sizes name a cell that does not exist")
        sizes = np.zeros(nlist, np.uint64)
        sizes[pairs[0::2].astype(np.int64)] = pairs[1::2]
    else:
        cur.fail("unknown IVF list layout")
    if (sizes > ntotal).any() or int(sizes.sum()) != ntotal:
        cur.fail(f"the IVF cells hold {int(sizes.sum(dtype=np.float64))} rows, not {ntotal}")
    ids = []
    for size in sizes[sizes > 0].astype(np.int64):
        cur.array("u1", int(size) * code_size)
        ids.append(cur.array("<i8", int(size)))
    listed = np.concatenate(ids) if ids else np.empty(0, np.int64)
    if len(listed) and (listed.min() < 0 or listed.max() >= ntotal
                        or np.bincount(listed, minlength=ntotal).max() != 1):
        cur.fail("the IVF cells do not list every row position exactly once")


def _ivf(cur: _Cursor, exp: Expected) -> int:
    tag = cur.one("4s")
    if tag != exp.tag:
        cur.fail(f"expected a faiss {exp.tag.decode()} index, found {tag!r}")
    binary = tag == b"IBwF"
    ntotal, nlist = _ivf_header(cur, exp, binary)
    d = exp.dim
    if tag == b"IwSq":
        qtype, _, _, sq_d, sq_code, trained = *cur.take("iifQQ"), cur.vector("<f4")
        code_size, _ = cur.take("QB")
        if qtype != _SQ_8BIT or sq_d != d or sq_code != d or code_size != d or len(trained) != 2 * d:
            cur.fail("the scalar quantizer is not the 8-bit one of this dimension")
    elif tag == b"IwPQ":
        _, code_size, pq_d, m, nbits = cur.take("BQQQQ")
        if pq_d != d or m != exp.params["m"] or nbits > _MAX_PQ_BITS or code_size != m * nbits // 8:
            cur.fail(f"the product quantizer (d {pq_d}, m {m}, {nbits} bits) does not match {exp.params}")
        if len(cur.vector("<f4")) != d << nbits:
            cur.fail("the product quantizer's centroids have the wrong size")
    else:
        code_size = d // 8 if binary else d * _F32
    _inverted_lists(cur, ntotal, nlist, code_size)
    return ntotal


def _nsg(cur: _Cursor, exp: Expected) -> int:
    if cur.one("4s") != b"INSf":
        cur.fail("expected a faiss INSf (IndexNSGFlat) index")
    ntotal = _float_header(cur, exp)
    knng = cur.take("iBiiii")[0]
    nodes, degree, _, _, _, enterpoint, built = cur.take("iiiiiiB")
    params = exp.params
    if (nodes != ntotal or nodes < 1 or degree != params["out_degree"] or knng != params["knng"] or built != 1
            or not 0 <= enterpoint < nodes):
        cur.fail(f"NSG graph header (nodes {nodes}, R {degree}, GK {knng}, entry {enterpoint}) does not match "
                 f"{ntotal} rows and {params}")
    ints = np.frombuffer(cur.data, dtype="<i4", offset=cur.at,
                         count=min((len(cur.data) - cur.at) // 4, nodes * (degree + 1)))
    ends = np.flatnonzero(ints == -1)[:nodes]
    if len(ends) < nodes:
        cur.fail("the NSG graph is truncated or a node lists too many neighbours")
    links = ints[:ends[-1] + 1]
    links = links[links != -1]
    if np.diff(np.concatenate([[-1], ends])).max() - 1 > degree or (
            len(links) and (links.min() < 0 or links.max() >= nodes)):
        cur.fail(f"an NSG node lists more than R={degree} neighbours or a neighbour outside 0..{nodes - 1}")
    cur.at += 4 * (int(ends[-1]) + 1)
    if _flat(cur, exp, binary=False) != nodes:
        cur.fail("the NSG vector storage does not hold one row per graph node")
    return nodes


def check_file(path: Path, exp: Expected) -> int:
    """Walk a saved faiss file as faiss's reader would; returns its row count or raises BuildIndexError."""
    cur = _Cursor(Path(path).read_bytes(), Path(path))
    if exp.tag in (b"IxF2", b"IxFI", b"IBxF"):
        ntotal = _flat(cur, exp, binary=exp.tag == b"IBxF")
    elif exp.tag == b"INSf":
        ntotal = _nsg(cur, exp)
    else:
        ntotal = _ivf(cur, exp)
    if cur.at != len(cur.data):
        cur.fail(f"{len(cur.data) - cur.at} bytes after the end of the index")
    return ntotal
