"""The explorer stays responsive at large values (issue 19): in a kernel a slider move returns at once and a
worker searches; moves that arrive while a search runs are not queued (only the latest value is searched
next) and the readout says it is computing. A gate holds the first search, so nothing depends on timing."""

from __future__ import annotations

import threading
from typing import Any

from conftest import clustered

from milvus_lab import Engine
from milvus_lab.widgets import Explorer


class Gated:
    """A collection whose searches wait at ``gate`` (when set) and record their search parameters."""

    def __init__(self, collection: Any) -> None:
        self._inner = collection
        self.gate: threading.Event | None = None
        self.waiting = threading.Event()  # set once a search waits at the gate
        self.searched: list[dict] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def search(self, queries, top_k, params=None, **kwargs):
        if self.gate is not None:
            self.waiting.set()
            assert self.gate.wait(60), "the test never opened the gate"
        self.searched.append(dict(params or {}))
        return self._inner.search(queries, top_k, params, **kwargs)


def test_moves_during_a_search_are_skipped_and_the_readout_says_it_is_computing():
    engine = Engine(build_threshold=1)
    inner = engine.create_collection("background", dimension=16)
    base = clustered(2000, 16, seed=12)
    inner.insert(base)
    collection = Gated(inner)
    ex = Explorer(collection, base, n_queries=20, index_type="IVF_FLAT", background=True)
    try:
        ex.form.fields["nlist"].value = 16
        assert ex.form.create() is not None
        collection.gate = threading.Event()
        collection.searched.clear()
        ex.slider.value = 2  # returns at once: the worker searches nprobe=2 and waits at the gate
        assert collection.waiting.wait(60), "the move started no search"
        ex.slider.value = 4
        ex.slider.value = 8
        assert "computing nprobe=8" in ex.readout.text
        collection.gate.set()
        assert ex.wait(timeout=60)
        assert {p["nprobe"] for p in collection.searched} == {2, 8}, collection.searched  # 4 was skipped
        assert ex.last["search"] == {"nprobe": 8} and "nprobe=8: recall@10" in ex.readout.text
    finally:
        collection.gate = None
        ex.close()


def test_outside_a_kernel_a_move_searches_before_it_returns():
    engine = Engine(build_threshold=1)
    collection = engine.create_collection("foreground", dimension=16)
    base = clustered(1000, 16, seed=13)
    collection.insert(base)
    ex = Explorer(collection, base, n_queries=20, index_type="IVF_FLAT")
    try:
        assert ex.background is False
        ex.form.fields["nlist"].value = 16
        assert ex.form.create() is not None
        ex.slider.value = 4
        assert ex.last["search"] == {"nprobe": 4}
    finally:
        ex.close()
