"""engine/files.npy_header: the one reader of a .npy header (saves and the lab's data files use it)."""

from __future__ import annotations

import io

import numpy as np
import pytest

from milvus_lab.engine.files import npy_header


@pytest.mark.parametrize("array", [np.zeros((5, 3), np.float32), np.arange(7, dtype=np.int64),
                                   np.zeros((2, 0), np.uint8), np.ones(4, np.bool_), np.float64(2.5)])
@pytest.mark.parametrize("version", [(1, 0), (2, 0)])
def test_npy_header_reads_what_numpy_wrote_and_stops_at_the_data(array, version):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(array), version=version)
    raw = buf.getvalue()
    stream = io.BytesIO(raw)
    shape, dtype = npy_header(stream)
    loaded = np.load(io.BytesIO(raw), allow_pickle=False)  # the oracle: NumPy's own reader
    assert (shape, dtype) == (loaded.shape, loaded.dtype)
    assert len(raw) - stream.tell() == loaded.nbytes


def test_npy_header_refuses_a_version_numpy_saves_only_for_unusual_dtypes_and_non_npy_bytes():
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.zeros(3, np.float32), version=(3, 0))
    with pytest.raises(ValueError, match=r"format version \(3, 0\)"):
        npy_header(io.BytesIO(buf.getvalue()))
    with pytest.raises(ValueError):
        npy_header(io.BytesIO(b"not a numpy file at all"))
