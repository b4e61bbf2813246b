"""The lab's dataset model: base vectors, held-out queries and exact ground truth, computed once and cached.

Datasets are built from NumPy arrays, pandas DataFrames, ``.npy``, ``.fvecs`` / ``.ivecs`` / ``.bvecs``
files, ann-benchmarks HDF5 files and the bundled GloVe words; the files are read by
:mod:`milvus_lab.lab.formats` (plain arrays) and :func:`load` picks the reader by suffix. When only one array
is given, a random set of rows is held out as queries (and removed from the base), so no query finds itself.

Ground truth is exact (:func:`milvus_lab.numerics.exact_knn`, the package's one brute-force k-NN),
independent of the index under test. It is computed for the largest ``k`` asked so far and sliced.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np

from .. import folders, numerics, spec
from ..errors import IllegalDimensionError, IllegalRecordError, InvalidParameterError, MilvusLabError, ParamError
from .arguments import ARGUMENTS, Bool, Int, Str, check
from .formats import (
    arg_name,
    copy_on_write_rows,
    dataframe_matrix,
    existing_file,
    file_path,
    mapped_file,
    read_array,
    read_hdf5,
    read_mapped_rows,
    read_matrix,
    release_mapped_pages,
    write_hdf5,
)
from .formats import cli_spelling as cli_spelling  # `milvus-lab compare` imports it from here

#: queries held out when the user gives one array and no query count
DEFAULT_QUERIES = 1000
LAB_METRICS = spec.ALL_FLOAT_METRICS
#: the variable that moves the cache of exact neighbours of bundled data (GloVe), see :func:`cache_dir`
CACHE_ENV = folders.CACHE_DIR_ENV


def cache_dir() -> Path:
    """The user's cache folder for the lab: :func:`milvus_lab.folders.cache_dir` ($MILVUS_LAB_CACHE_DIR, else
    the platform's cache folder, ~/.cache/milvus_lab on Linux)."""
    return folders.cache_dir()


# --------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------
def as_vectors(data: Any, what: str = "vectors", dim: int | None = None) -> np.ndarray:
    """``data`` as float32 rows (:func:`milvus_lab.numerics.as_vectors`) of a dimension the spec allows."""
    try:
        out = numerics.as_vectors(data, what, dim)
    except MilvusLabError:
        raise
    except Exception as exc:  # noqa: BLE001 - a hostile object's __array__ / __len__ / __iter__
        raise IllegalRecordError(f"{what}: not an array of numbers ({type(exc).__name__}: "
                                 f"{spec.show_value(str(exc))})") from None
    try:
        spec.validate_dimension(out.shape[1], "L2")
    except InvalidParameterError as exc:
        raise IllegalDimensionError(f"{what}: {exc}") from None
    return out


def _metric(metric: Any) -> str:
    name = spec.metric_name(metric)  # COSINE too: a target without it (Milvus 0.10) refuses it with the reason
    if name not in LAB_METRICS:
        raise ParamError(f"the lab compares float index types; metric must be one of {', '.join(LAB_METRICS)}; "
                         f"got {name}")
    return name


def _normalise_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    out = x.copy()
    np.divide(out, norms, out=out, where=norms > 0)
    return out


# --------------------------------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------------------------------
@dataclass(eq=False)
class Dataset:
    """Base vectors, query vectors and a metric; exact ground truth is computed once and cached here.

    ``labels`` / ``query_labels`` optionally name the rows (GloVe words). Build a Dataset with
    :func:`from_array`, :func:`from_dataframe`, :func:`from_files`, :func:`load_hdf5`,
    :func:`load_glove_dataset` or :func:`load`.
    """

    base: np.ndarray
    queries: np.ndarray
    metric: str = "L2"
    name: str = "dataset"
    labels: Sequence[str] | None = None
    query_labels: Sequence[str] | None = None
    _gt_ids: np.ndarray | None = field(default=None, repr=False)
    _fingerprint: str | None = field(default=None, repr=False)
    #: keep exact neighbours on disk between runs (the bundled GloVe words; see :func:`cache_dir`)
    disk_cache: bool = field(default=False, repr=False)
    #: base rows that differ from the file under a copy-on-write mapped base (rows moved in place of
    #: held-out queries by :func:`from_array`); they are never read from the file nor released
    _private_rows: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.metric = _metric(self.metric)
        self.name = check("name", self.name, Str())
        self.base = as_vectors(self.base, "base vectors")
        self.queries = as_vectors(self.queries, "query vectors", self.base.shape[1])

    # ---------------------------------------------------------------- description
    @property
    def n(self) -> int:
        return int(self.base.shape[0])

    @property
    def dim(self) -> int:
        return int(self.base.shape[1])

    @property
    def nq(self) -> int:
        return int(self.queries.shape[0])

    def __repr__(self) -> str:
        exact = "not computed yet" if self._gt_ids is None else f"computed for k <= {self._gt_ids.shape[1]}"
        return (f"Dataset({self.name!r}, base={self.n:,} x {self.dim}, queries={self.nq:,}, metric={self.metric}, "
                f"exact neighbours: {exact})")

    @property
    def fingerprint(self) -> str:
        """A hash of the base vectors and metric: builds on equal data are shared in a lab session."""
        if self._fingerprint is None:
            h = hashlib.blake2b(digest_size=16)
            h.update(f"{self.metric}:{self.base.shape}".encode())
            h.update(memoryview(self.base).cast("B"))
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def _file_rows(self) -> tuple[str, int] | None:
        """(file name, byte offset of row 0) when the base vectors are a memory-mapped file's rows."""
        return mapped_file(self.base)

    def rows(self, ids: Any) -> np.ndarray:
        """Base rows ``ids`` (float32). A memory-mapped base is read from its file without mapping pages into
        memory (touching a mapped row also maps its cached neighbours, which would undo :meth:`release_pages`)."""
        ids = self._check_rows("ids", ids, self.n)
        source = self._file_rows()
        if source is None:
            return self.base[ids]
        out = read_mapped_rows(source, ids, self.dim)
        if self._private_rows is not None and len(self._private_rows):
            moved = np.isin(ids, self._private_rows)
            out[moved] = self.base[ids[moved]]
        return out

    @property
    def file_backed(self) -> bool:
        """Are the base vectors memory-mapped from a file (``lab.load`` of a ``.npy``)?"""
        return self._file_rows() is not None

    def release_pages(self) -> bool:
        """When the base vectors are memory-mapped from a file (``lab.load`` of a ``.npy``), drop their pages
        from this process's resident memory; the OS reads them again from the file when needed. Used once
        the rows are in a collection, so the lab holds the raw rows once. Returns whether pages were dropped."""
        return release_mapped_pages(self.base, self._private_rows)

    # ---------------------------------------------------------------- ground truth
    def check_k(self, k: Any) -> int:
        """``k`` as an int in [1, min(rows, top_k's limit)]; ParamError naming ``k`` otherwise."""
        top = ARGUMENTS["k"].high
        number = spec.as_int(k)
        if number is None or not 1 <= number <= min(self.n, top):
            raise ParamError(f"k must be an int in [1, {min(self.n, top)}] (at most the {self.n:,} base "
                             f"rows and top_k's limit {top}); got k={spec.show_value(k)}")
        return number

    @staticmethod
    def _check_rows(name: str, rows: Any, count: int) -> np.ndarray:
        """``rows`` as int64 row numbers in [0, count); ParamError naming ``name`` otherwise."""
        try:
            out = np.asarray(rows)
            ok = out.ndim == 1 and (out.size == 0 or np.issubdtype(out.dtype, np.integer)) and \
                not np.issubdtype(out.dtype, np.bool_)
            ok = ok and (out.size == 0 or (int(out.min()) >= 0 and int(out.max()) < count))
        except Exception:  # noqa: BLE001 - hostile objects, huge ints
            ok = False
        if not ok:
            raise ParamError(f"{name} must be a list of row numbers in [0, {count - 1}]; got {spec.show_value(rows)}")
        return out.astype(np.int64)

    def _cache_file(self, k: int) -> Path:
        h = hashlib.blake2b(digest_size=20)
        h.update(f"exact-knn:v1:{self.metric}:{k}:{self.base.shape}:{self.queries.shape}".encode())
        h.update(memoryview(np.ascontiguousarray(self.base)).cast("B"))
        h.update(memoryview(np.ascontiguousarray(self.queries)).cast("B"))
        return cache_dir() / "ground_truth" / f"{h.hexdigest()}.npy"

    def _cached_neighbours(self, path: Path, k: int) -> np.ndarray | None:
        """The cached ids when the file is exactly what was written (shape, dtype, ids in range), else None."""
        try:
            ids = np.load(path, allow_pickle=False)
        except Exception:  # noqa: BLE001 - a missing, damaged or foreign file is ignored (and rewritten)
            return None
        if ids.shape != (self.nq, k) or ids.dtype != np.int64 or (ids.size and (ids.min() < 0 or ids.max() >= self.n)):
            return None
        return ids

    def _save_neighbours(self, path: Path, ids: np.ndarray) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
            np.save(tmp, np.ascontiguousarray(ids, dtype=np.int64), allow_pickle=False)
            os.replace(tmp, path)
        except OSError:  # a read-only home: the neighbours are still computed, just not kept
            pass

    def ground_truth(self, k: int = 10, *, cache: bool | None = None) -> np.ndarray:
        """Exact top-``k`` base row ids of every query (nq x k), best first; computed once and cached.

        ``cache=True`` (the default for the bundled GloVe words) also keeps them on disk under
        :func:`cache_dir`, keyed by a hash of the base, the queries, the metric and k, so another run on the
        same data reads them instead of computing them again."""
        k = self.check_k(k)
        disk = self.disk_cache if cache is None else check("cache", cache, Bool())
        if self._gt_ids is None or self._gt_ids.shape[1] < k:
            ids = None
            path = self._cache_file(k) if disk else None
            if path is not None:
                ids = self._cached_neighbours(path, k)
            if ids is None:
                ids = numerics.exact_knn(self.base, self.queries, k, self.metric)[0]
                if path is not None:
                    self._save_neighbours(path, ids)
            self._gt_ids = ids
        return self._gt_ids[:, :k]

    def set_ground_truth(self, ids: Any) -> None:
        """Use known neighbour ids (e.g. from an ann-benchmarks file) instead of computing them."""
        try:
            ids = np.asarray(ids)
        except Exception:  # noqa: BLE001 - a hostile object
            ids = np.asarray(None)
        if ids.ndim != 2 or ids.shape[0] != self.nq or not np.issubdtype(ids.dtype, np.integer) or \
                np.issubdtype(ids.dtype, np.bool_) or ids.shape[1] == 0:
            raise IllegalRecordError(f"ground truth must be an integer array of shape (queries={self.nq}, k); "
                                     f"got shape {ids.shape}, dtype {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.n):
            raise IllegalRecordError(f"ground truth ids must be base rows in [0, {self.n - 1}]; got values in "
                                     f"[{ids.min()}, {ids.max()}]")
        self._gt_ids = np.ascontiguousarray(ids, dtype=np.int64)

    # ---------------------------------------------------------------- derived datasets
    def _derive(self, queries: np.ndarray, gt: np.ndarray | None, query_labels: Sequence[str] | None,
                name: str) -> Dataset:
        out = Dataset(self.base, queries, self.metric, name, self.labels, query_labels)
        out._fingerprint = self._fingerprint
        out.base = self.base  # the same array: builds in a session are shared
        out._private_rows = self._private_rows
        if gt is not None:
            out._gt_ids = gt
        return out

    def subset_queries(self, rows: Any, name: str | None = None) -> Dataset:
        """The same base with a subset of the queries (ground truth carried over, not recomputed)."""
        rows = self._check_rows("rows", rows, self.nq)
        if not len(rows):
            raise ParamError("rows is empty; give at least one query row")
        name = check("name", name, Str(none_ok=True))
        gt = None if self._gt_ids is None else self._gt_ids[rows]
        labels = None if self.query_labels is None else [self.query_labels[i] for i in rows]
        self.fingerprint  # noqa: B018 - computed once, shared with the subset
        return self._derive(self.queries[rows], gt, labels, name or self.name)

    def split_queries(self, holdout: float = 0.5, seed: int = 0) -> tuple[Dataset, Dataset]:
        """Split the queries at random into (tuning, held-out) datasets over the same base."""
        fraction = check("holdout", holdout)
        seed = check("seed", seed)
        if self.nq < 2:
            raise ParamError(f"splitting queries needs at least 2 queries; the dataset has {self.nq}")
        order = np.random.default_rng(seed).permutation(self.nq)
        n_hold = min(self.nq - 1, max(1, round(self.nq * fraction)))
        return (self.subset_queries(np.sort(order[n_hold:]), f"{self.name} (tuning queries)"),
                self.subset_queries(np.sort(order[:n_hold]), f"{self.name} (held-out queries)"))

    def with_queries(self, queries: Any, name: str | None = None) -> Dataset:
        """The same base with new queries (their ground truth is computed when first needed)."""
        self.fingerprint  # noqa: B018
        name = check("name", name, Str(none_ok=True))
        return self._derive(as_vectors(queries, "query vectors", self.dim), None, None, name or self.name)

    # ---------------------------------------------------------------- files
    def save_hdf5(self, path: str | os.PathLike, k: int = 100) -> Path:
        """Write the ann-benchmarks layout: train, test, neighbors and distances (k columns), metric attr."""
        return save_hdf5(self, path, k)


# --------------------------------------------------------------------------------------------------
# From arrays and DataFrames
# --------------------------------------------------------------------------------------------------
def _split(vectors: np.ndarray, n_queries: Any,
           seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """(base, queries, base rows' positions in ``vectors``, query rows' positions, base rows that hold a moved
    row under a copy-on-write mapping or None): ``n_queries`` rows drawn at random with ``seed``."""
    n = len(vectors)
    if n < 2:
        raise IllegalRecordError(f"holding out queries needs at least 2 rows; got {n}; give the queries "
                                 f"({arg_name('queries', '...', 'FILE')})")
    seed = check("seed", seed)
    fraction = None
    if not isinstance(n_queries, Integral) and isinstance(n_queries, Real) and not isinstance(n_queries, bool):
        try:
            fraction = float(n_queries)
        except Exception:  # noqa: BLE001
            fraction = None
    if n_queries is None:
        count = min(DEFAULT_QUERIES, max(1, n // 10))
    elif spec.as_int(n_queries) is not None:
        count = spec.as_int(n_queries)
    elif fraction is not None and 0 < fraction < 1:
        count = max(1, round(n * fraction))
    else:
        raise ParamError(f"{arg_name('n_queries')} must be an int or a fraction in (0, 1); got "
                         f"{spec.show_value(n_queries)}")
    if not 1 <= count < n:
        raise ParamError(f"{arg_name('n_queries', spec.show_value(count), spec.show_value(count))} must be in "
                         f"[1, {n - 1}] for {n:,} rows (the rest is the base)")
    rng = np.random.default_rng(seed)
    chosen = np.zeros(n, dtype=bool)
    chosen[rng.choice(n, size=count, replace=False)] = True
    q_rows, b_rows = np.flatnonzero(chosen), np.flatnonzero(~chosen)
    source = mapped_file(vectors)
    if source is None:
        return vectors[b_rows], vectors[q_rows], b_rows, q_rows, None
    # a memory-mapped file is not copied: the base is a copy-on-write mapping of its first n - count rows in
    # which each held-out query row is overwritten by one of the base rows of the last count rows (the
    # queries, a small copy, keep their random draw; only the pages of the moved rows become private memory)
    head = n - count
    queries = vectors[q_rows]
    holes, fillers = q_rows[q_rows < head], b_rows[b_rows >= head]
    base = copy_on_write_rows(source, head, vectors.shape[1])
    base[holes] = vectors[fillers]
    order = np.arange(head)
    order[holes] = fillers
    return base, queries, order, q_rows, holes


def from_array(vectors: Any, queries: Any = None, *, n_queries: float | None = None, metric: str = "L2",
               normalize: bool = False, name: str = "array", labels: Sequence[str] | None = None,
               seed: int = 0) -> Dataset:
    """A dataset from a base array and optional queries.

    Without ``queries``, ``n_queries`` rows (default min(1000, n/10); a float is a fraction) are drawn at
    random with ``seed`` and removed from the base. ``normalize=True`` scales rows to unit length (with
    ``metric="IP"`` this is cosine similarity).
    """
    base = as_vectors(vectors, "vectors")
    query_labels = None
    normalize = check("normalize", normalize, Bool())
    name = check("name", name, Str())
    seed = check("seed", seed)
    _metric(metric)
    if labels is not None:
        try:
            labels = [str(w) for w in labels] if not isinstance(labels, (str, bytes, Mapping)) else None
        except Exception:  # noqa: BLE001 - a hostile sequence or label
            labels = None
        if labels is None:
            raise ParamError("labels must be a list of names, one per row of vectors")
        if len(labels) != len(base):
            raise ParamError(f"labels has {len(labels)} entries but vectors has {len(base)} rows")
    private = None
    if queries is None:
        base, q, b_rows, q_rows, private = _split(base, n_queries, seed)
        if labels is not None:
            labels, query_labels = [labels[i] for i in b_rows], [labels[i] for i in q_rows]
    else:
        if n_queries is not None:
            raise ParamError("give either queries or n_queries, not both")
        q = as_vectors(queries, "query vectors", base.shape[1])
    if normalize:
        base, q, private = _normalise_rows(base), _normalise_rows(q), None
    return Dataset(base, q, metric, name, labels, query_labels, _private_rows=private)


def from_dataframe(df: Any, column: str | None = None, columns: Sequence[str] | None = None, *,
                   queries: Any = None, n_queries: float | None = None, metric: str = "L2",
                   normalize: bool = False, name: str = "dataframe", label_column: str | None = None,
                   seed: int = 0) -> Dataset:
    """A dataset from a DataFrame: ``column`` holds one vector per row, or ``columns`` are the dimensions.

    With neither, a single column of vectors or all numeric columns are used. ``queries`` may be a
    DataFrame of the same layout or an array; without it, rows are held out as in :func:`from_array`.
    """
    base = dataframe_matrix(df, column, columns, "vectors")
    labels = None
    label_column = check("label_column", label_column, Str(none_ok=True))
    if label_column is not None:
        if label_column not in df.columns:
            raise ParamError(f"label_column: no column {label_column!r}; columns are {list(df.columns)}")
        labels = [str(v) for v in df[label_column].tolist()]
    if queries is not None:
        import pandas as pd

        if isinstance(queries, pd.DataFrame):
            queries = dataframe_matrix(queries, column, columns, "queries")
        elif isinstance(queries, (str, bytes)):
            raise ParamError(f"queries must be a DataFrame or an array; got {spec.show_value(queries)}")
    return from_array(base, queries, n_queries=n_queries, metric=metric, normalize=normalize, name=name,
                      labels=labels, seed=seed)


# --------------------------------------------------------------------------------------------------
# From files (read by milvus_lab.lab.formats)
# --------------------------------------------------------------------------------------------------
def load(path: str | os.PathLike, *, queries: str | os.PathLike | None = None,
         groundtruth: str | os.PathLike | None = None, column: str | None = None,
         columns: Sequence[str] | None = None, n_queries: float | None = None, metric: str | None = None,
         normalize: bool = False, seed: int = 0) -> Dataset:
    """Load a dataset from a file, by its suffix: .hdf5/.h5, .npy, .fvecs/.bvecs, .csv or .parquet.

    ``queries`` (same formats) and ``groundtruth`` (.ivecs / .npy ids) are optional; without queries,
    ``n_queries`` rows are held out at random.
    """
    path = file_path("path", path)
    if path.suffix.lower() in (".hdf5", ".h5"):
        if queries is not None or groundtruth is not None:
            raise ParamError(f"an HDF5 file carries its own queries and ground truth; do not pass "
                             f"{arg_name('queries')} or {arg_name('groundtruth')}")
        ds = load_hdf5(path)
        if metric is not None and _metric(metric) != ds.metric:
            raise ParamError(f"{path} declares metric {ds.metric}; got "
                             f"{arg_name('metric', str(metric), str(metric))}")
        return ds
    data = read_matrix(path, column=column, columns=columns)
    q = None if queries is None else read_matrix(queries, column=column, columns=columns, what="queries")
    try:
        ds = from_array(data, q, n_queries=n_queries, metric="L2" if metric is None else metric,
                        normalize=normalize, name=path.stem, seed=seed)
    except MilvusLabError as exc:
        raise type(exc)(f"{path}: {exc}") from None
    if groundtruth is not None:
        if queries is None:
            raise ParamError(f"{arg_name('groundtruth')} needs the queries file it was computed for "
                             f"({arg_name('queries', '...', 'FILE')})")
        if normalize:
            raise ParamError(f"{arg_name('groundtruth')} from a file is for the raw vectors; do not combine it "
                             f"with {arg_name('normalize')}")
        ds.set_ground_truth(read_array(groundtruth, "groundtruth"))
    return ds


def from_files(base: str | os.PathLike, queries: str | os.PathLike | None = None,
               groundtruth: str | os.PathLike | None = None, *, n_queries: float | None = None,
               metric: str = "L2", normalize: bool = False, seed: int = 0) -> Dataset:
    """A dataset from .npy / .fvecs / .bvecs files; ``groundtruth`` (.ivecs or .npy) gives known neighbours."""
    return load(base, queries=queries, groundtruth=groundtruth, n_queries=n_queries, metric=metric,
                normalize=normalize, seed=seed)


def load_hdf5(path: str | os.PathLike, *, name: str | None = None) -> Dataset:
    """An ann-benchmarks HDF5 file: ``train`` (base), ``test`` (queries), ``neighbors`` (ground truth).

    The ``distance`` attribute picks the metric: euclidean -> L2; angular -> IP on unit-normalised rows
    (the same ranking as cosine); dot -> IP. Binary (hamming/jaccard) files are refused.
    """
    path = existing_file("path", file_path("path", path))
    name = check("name", name, Str(none_ok=True))
    train, test, neighbors, metric, normalise = read_hdf5(path)
    try:
        ds = from_array(train, test, metric=metric, normalize=normalise, name=name or path.stem)
    except MilvusLabError as exc:
        raise type(exc)(f"{path}: {exc}") from None
    if neighbors is not None:
        ds.set_ground_truth(neighbors)
    return ds


def save_hdf5(dataset: Dataset, path: str | os.PathLike, k: int = 100) -> Path:
    """Write ``dataset`` in the ann-benchmarks layout with its exact top-``k`` (k capped at the base size)."""
    path = Path(path)
    k = min(int(k), dataset.n)
    ids = dataset.ground_truth(k)
    dist = numerics.pair_distances(dataset.base, dataset.queries, ids, dataset.metric)
    return write_hdf5(path, dataset.base, dataset.queries, ids, dist, dataset.metric)


# --------------------------------------------------------------------------------------------------
# GloVe
# --------------------------------------------------------------------------------------------------
def load_glove_dataset(n: int = 100_000, n_queries: int = DEFAULT_QUERIES, *, metric: str = "L2",
                       normalize: bool = False, seed: int = 0) -> Dataset:
    """The bundled GloVe 6B 50-d words: ``n`` base words and ``n_queries`` held-out query words.

    The ``n + n_queries`` most frequent words are loaded and ``n_queries`` of them drawn at random
    (``seed``) as queries; the base is the other ``n``. Words are kept as ``labels`` / ``query_labels``.
    """
    from ..datasets import GLOVE_ROWS, load_glove

    n = check("n", n, Int(1, GLOVE_ROWS))
    n_queries = check("n_queries", n_queries, Int(1, GLOVE_ROWS))
    if n + n_queries > GLOVE_ROWS:
        raise ParamError(f"n + n_queries = {n + n_queries:,} exceeds the {GLOVE_ROWS:,} GloVe words")
    vectors, words = load_glove(n + n_queries)
    name = f"glove-{n // 1000}k" if n % 1000 == 0 else f"glove-{n}"
    ds = from_array(vectors, n_queries=n_queries, metric=metric, normalize=normalize, name=name, labels=words,
                    seed=seed)
    ds.disk_cache = True  # its exact neighbours are kept on disk: a second `milvus-lab compare` reads them
    return ds


def check_dataset(value: Any) -> Dataset:
    """``value`` if it is a lab Dataset; else a ParamError saying how to make one."""
    if not isinstance(value, Dataset):
        raise ParamError(f"dataset must be a lab Dataset (lab.from_array, lab.load, ...); got "
                         f"{spec.show_value(value)}")
    return value
