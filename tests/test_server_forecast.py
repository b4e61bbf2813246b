"""The forecast and index memory on a Milvus 2.3 server target (tests marked ``server``): the figures are the
server's, memory is the sizing tool's estimate and says so, and only the lab's own collections are touched."""

from __future__ import annotations

import pytest
from conftest import clustered

from milvus_lab import lab
from milvus_lab.lab import sizing
from milvus_lab.units import MIB

pytestmark = [pytest.mark.server, pytest.mark.slow]


@pytest.fixture(scope="module")
def data():
    return lab.from_array(clustered(6000, 16, clusters=30, seed=5), clustered(50, 16, clusters=30, seed=6),
                          name="server-forecast")


def test_server_memory_is_the_sizing_tools_estimate_and_marked_so(target, data):
    df = lab.measure(data, "IVF_FLAT", {"nlist": 64}, {"nprobe": 8}, target=target, repeats=2, latency_queries=5)
    row = df.iloc[0]
    assert row["status"] == "ok"
    assert bool(row["memory_estimated"]) is True
    expected = sizing.index_estimate("IVF_FLAT", {"nlist": 64}, data.n, data.dim).bytes / MIB
    assert row["memory_mb"] == pytest.approx(expected)
    assert "estimate from the Milvus sizing tool" in row["note"]


def test_forecast_on_a_server_uses_the_servers_figures(target, data):
    result = lab.forecast(data, 24_000, ["IVF_FLAT", "HNSW"], target=target, progress=False, repeats=2,
                          latency_queries=5)
    assert result.sizes[0] >= 1024  # the server indexes no segment below its floor
    table = result.table.set_index("index_type")
    for name in ("IVF_FLAT", "HNSW"):
        assert table.loc[name, "status"] == "ok", table.loc[name, "note"]
        assert "sizing tool's estimate" in table.loc[name, "note"]
        assert table.loc[name, "qps"] > 0
    assert "Milvus" in result.target
