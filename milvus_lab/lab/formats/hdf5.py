"""ann-benchmarks HDF5 files: ``train`` (base rows), ``test`` (queries), ``neighbors`` (ground-truth ids),
``distances``, and a ``distance`` attribute naming the metric."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ...errors import IllegalRecordError, ParamError
from .paths import existing_file, file_path

#: ann-benchmarks' ``distance`` attribute -> (metric, normalise rows)
HDF5_METRICS = {"euclidean": ("L2", False), "l2": ("L2", False), "angular": ("IP", True),
                "cosine": ("IP", True), "dot": ("IP", False), "ip": ("IP", False)}


class HDF5Arrays(NamedTuple):
    """What an ann-benchmarks file holds, as the lab reads it."""

    #: base rows, as stored
    train: np.ndarray
    #: query rows, as stored
    test: np.ndarray
    #: known neighbour ids of each query, or None when the file has none
    neighbors: np.ndarray | None
    #: the lab's metric for the file's ``distance`` (:data:`HDF5_METRICS`)
    metric: str
    #: whether rows must be scaled to unit length for that metric to rank as the file's distance does
    normalize: bool


def read_hdf5(path: str | os.PathLike) -> HDF5Arrays:
    """The arrays and metric of an ann-benchmarks HDF5 file.

    A missing ``distance`` attribute means euclidean. A file that is not HDF5, lacks ``train`` or ``test``,
    or whose arrays cannot be read raises IllegalRecordError; a distance outside :data:`HDF5_METRICS`
    (binary hamming / jaccard files) raises ParamError. The arrays are returned as stored, not checked."""
    import h5py

    path = existing_file("path", file_path("path", path))
    try:
        handle = h5py.File(path, "r")
    except Exception as exc:  # noqa: BLE001 - h5py raises OSError, and others for some damaged files
        raise IllegalRecordError(f"cannot read {path} as HDF5: {exc}") from None
    with handle as f:
        missing = [key for key in ("train", "test") if key not in f]
        if missing:
            raise IllegalRecordError(f"{path} is not an ann-benchmarks file: no dataset(s) {missing} (it has "
                                     f"{sorted(f.keys())})")
        distance = f.attrs.get("distance", "euclidean")
        distance = distance.decode() if isinstance(distance, bytes) else str(distance)
        if distance.lower() not in HDF5_METRICS:
            raise ParamError(f"{path}: distance {distance!r} is not supported by the float lab; supported: "
                             f"{', '.join(HDF5_METRICS)}")
        metric, normalise = HDF5_METRICS[distance.lower()]
        try:
            train, test = f["train"][()], f["test"][()]
            neighbors = f["neighbors"][()] if "neighbors" in f else None
        except Exception as exc:  # noqa: BLE001 - h5py / numpy reasons for a damaged file vary
            raise IllegalRecordError(f"cannot read the arrays of {path}: {exc}") from None
    return HDF5Arrays(train, test, neighbors, metric, normalise)


def write_hdf5(path: str | os.PathLike, train: np.ndarray, test: np.ndarray, neighbors: np.ndarray,
               distances: Any, metric: str) -> Path:
    """Write the ann-benchmarks layout (folders are created); returns the path.

    ``neighbors`` are stored as int32 ids; ``distances`` are the lab's (squared L2, or inner product for IP)
    and are stored as ann-benchmarks has them: the euclidean distance itself for L2, as float32. The
    ``distance`` attribute is ``euclidean`` for L2 and ``dot`` otherwise."""
    import h5py

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.attrs["distance"] = "euclidean" if metric == "L2" else "dot"
        f.attrs["point_type"] = "float"
        f.attrs["dimension"] = int(train.shape[1])
        f.create_dataset("train", data=train)
        f.create_dataset("test", data=test)
        f.create_dataset("neighbors", data=neighbors.astype(np.int32))
        # ann-benchmarks stores the euclidean distance itself, not its square
        f.create_dataset("distances", data=(np.sqrt(np.maximum(distances, 0)) if metric == "L2" else distances)
                         .astype(np.float32))
    return path
