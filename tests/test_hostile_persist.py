"""Robustness: a hostile manifest (any value replaced, removed or added, sums recomputed) gives PersistError,
never a foreign exception, and whatever loads restores cleanly. The refusals a damaged save must give are in
test_persist.py."""

from __future__ import annotations

import copy
import hashlib
import json
import warnings

import numpy as np
import pytest
from conftest import clustered
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from helpers import examples

from milvus_lab import Engine
from milvus_lab.engine import persist
from milvus_lab.engine.persist import PersistError
from milvus_lab.errors import MilvusLabError


@pytest.fixture(scope="module")
def save(tmp_path_factory):
    """A small save with everything a manifest can hold: partitions, indexed, raw and open segments,
    flushed and pending deletes."""
    root = tmp_path_factory.mktemp("hostile")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(persist.CONFIG_DIR_ENV, str(root / "config"))
        engine = Engine(build_threshold=32)
        try:
            c = engine.create_collection("h", 8, segment_rows=60)
            c.create_partition("p")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                c.create_index("IVF_FLAT", {"nlist": 4})
            c.insert(clustered(150, 8, clusters=6))
            c.insert(clustered(20, 8, clusters=6, seed=3), partition_tag="p")
            assert c.wait_for_index(60)
            c.delete(list(range(0, 150, 9)))
            c.flush()
            c.delete([1, 2, 3])
            path = persist.save_collection(c.snapshot(), root / "s")
        finally:
            engine.close()
        manifest = json.loads((path / "manifest.json").read_text())
        yield path, manifest, mp


def nodes(value, where=()):
    """Every position in the JSON tree (a tuple of keys / indexes)."""
    yield where
    if isinstance(value, dict):
        for k, v in value.items():
            yield from nodes(v, (*where, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from nodes(v, (*where, i))


HOSTILE = st.one_of(
    st.sampled_from([0, -1, 1, 2**31, 2**63, -(2**63) - 1, 10**40, True, False, None, 1.5, -0.0, 1e308,
                     float("nan"), float("inf"), "", "x" * 300, "../../etc/passwd", "L2", "IVF_FLAT", "_default",
                     [], {}, [1, 2], {"a": 1}, [[[]]], {"nlist": 0}, {"nlist": 2**63}, "0" * 64]),
    st.integers(), st.text(max_size=20), st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


def write(path, manifest, keep_signature: bool) -> None:
    manifest = copy.deepcopy(manifest)
    signature = manifest.pop("signature", None)
    manifest.pop("checksum", None)
    try:
        body = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    except (TypeError, ValueError):
        body = b""
    manifest["checksum"] = {"sha256": hashlib.sha256(body).hexdigest()}
    if keep_signature:
        manifest["signature"] = signature
    (path / "manifest.json").write_text(json.dumps(manifest))


def attempt(path, trust: bool) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = persist.read_collection_state(path, trust=trust)
    except PersistError as exc:
        assert str(exc).startswith(f"cannot load {path}") or "signing key" in str(exc)
        return
    engine = Engine(build_threshold=32)
    try:
        engine.restore_collection(state)
    except MilvusLabError:
        pass  # restore is the engine's own check; a refusal there is one of ours
    finally:
        engine.close()


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), action=st.sampled_from(["replace", "remove", "add"]), value=HOSTILE,
       keep_signature=st.booleans(), trust=st.booleans())
def test_load_robust_to_a_hostile_manifest(save, data, action, value, keep_signature, trust):
    path, original, _ = save
    manifest = copy.deepcopy(original)
    positions = [p for p in nodes(manifest) if p and p[0] not in ("checksum", "signature")]
    where = data.draw(st.sampled_from(positions))
    parent = manifest
    for key in where[:-1]:
        parent = parent[key]
    last = where[-1]
    if action == "replace":
        parent[last] = value
    elif action == "remove":
        del parent[last]
    elif isinstance(parent, dict):
        parent[f"{last}_extra"] = value
    else:
        parent.append(value)
    try:
        write(path, manifest, keep_signature)
        attempt(path, trust)
    finally:
        write(path, original, keep_signature=True)


def test_the_untouched_save_still_loads(save):
    """The robustness check above starts from a save that loads (else it would pass on nothing)."""
    path, original, _ = save
    write(path, original, keep_signature=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        state = persist.read_collection_state(path)
    assert sum(s.count for s in state.segments) == 170
    assert np.concatenate([s.ids for s in state.segments]).size == 170
