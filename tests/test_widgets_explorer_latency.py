"""The explorer's latency readout (issue 19): the query batch is timed several times, the readout shows the
median with the runs' range, says when two positions are not measurably different (their ranges overlap),
and a batch too slow to repeat is run once and said so. The clock is a fake one: no wall-clock assertions."""

from __future__ import annotations

import importlib

import pytest
from conftest import clustered

from milvus_lab import Engine
from milvus_lab.widgets import explorer

# the module (the package's name `explorer` is the function)
explorer_module = importlib.import_module("milvus_lab.widgets.explorer")


class FakeClock:
    """Each timed call appears to take ``step`` seconds."""

    def __init__(self) -> None:
        self.now, self.step, self.calls = 0.0, 0.01, 0

    def __call__(self) -> float:
        self.calls += 1
        if self.calls % 2 == 0:  # the reading after a call: the call took `step`
            self.now += self.step
        return self.now


@pytest.fixture
def ivf_explorer(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(explorer_module, "_clock", clock)
    engine = Engine(build_threshold=1)
    collection = engine.create_collection("latency", dimension=16)
    base = clustered(2000, 16, seed=8)
    collection.insert(base)
    ex = explorer(collection, vectors=base, n_queries=50, index_type="IVF_FLAT")
    ex.form.fields["nlist"].value = 32
    assert ex.form.create() is not None
    yield ex, clock
    ex.close()


def test_the_readout_is_a_median_with_its_range_over_several_runs(ivf_explorer):
    ex, clock = ivf_explorer
    clock.step = 0.01
    ex.slider.value = 4
    runs = ex.last["runs"]
    low, high = explorer_module.LATENCY_RUNS
    assert low <= runs <= high
    assert ex.last["ms"] == pytest.approx(0.01 * 1000 / 50) and ex.last["ms_lo"] <= ex.last["ms"] <= ex.last["ms_hi"]
    assert f"median of {runs} runs of 50 queries" in ex.readout.text


def test_positions_whose_ranges_overlap_are_called_not_measurably_different(ivf_explorer):
    ex, clock = ivf_explorer
    clock.step = 0.01
    ex.slider.value = 4
    ex.slider.value = 8  # same time per batch: the ranges overlap
    assert "not measurably different from nprobe=4" in ex.readout.text
    clock.step = 0.05
    ex.slider.value = 16  # five times slower: a real difference
    assert "not measurably different" not in ex.readout.text
    assert ex.last["ms"] == pytest.approx(0.05 * 1000 / 50)


def test_a_batch_too_slow_to_repeat_runs_once_and_says_so(ivf_explorer):
    ex, clock = ivf_explorer
    clock.step = explorer_module.SLOW_BATCH_S * 2
    ex.slider.value = 32
    assert ex.last["runs"] == 1 and "too slow to repeat" in ex.readout.text
