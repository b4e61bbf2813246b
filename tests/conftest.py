"""Shared fixtures and test data: clustered vectors with exact ground truth, an engine, a signing-key folder, the
session's embedded Milvus server and a connection to it, the hypothesis profiles and the rule that puts server,
browser and notebook tests in the slow set."""

from __future__ import annotations

import os

import numpy as np
import pytest
from helpers import DEV_EXAMPLES, HYPOTHESIS_PROFILE, make_hostile_files
from hypothesis import HealthCheck, settings

import milvus_lab  # noqa: F401  (first: sets the OpenMP wait policy before any test imports faiss)
from milvus_lab import Engine
from milvus_lab.folders import CACHE_DIR_ENV, CONFIG_DIR_ENV

# No wall-clock deadline anywhere (a loaded machine is not a failure); `ci` runs each test's full example count,
# `dev` (the default) at most DEV_EXAMPLES (tests with their own count scale it with helpers.examples)
_COMMON = {"deadline": None, "print_blob": True, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("ci", **_COMMON)
settings.register_profile("dev", max_examples=DEV_EXAMPLES, **_COMMON)
settings.load_profile(HYPOTHESIS_PROFILE)

#: markers whose tests are slow by nature (a server, a browser, a kernel): they also get `slow`
SLOW_BY_NATURE = ("server", "browser", "notebook")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``-m "not slow"`` leaves out every server, browser and notebook test as well as those marked slow."""
    for item in items:
        if any(item.get_closest_marker(name) for name in SLOW_BY_NATURE):
            item.add_marker(pytest.mark.slow)


#: Playwright's expect() waits 5 s by default, too short after a build on a loaded machine: a failure bound only
BROWSER_EXPECT_MS = 60_000


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("browser"):
        from playwright.sync_api import expect

        expect.set_options(timeout=BROWSER_EXPECT_MS)


@pytest.fixture(autouse=True, scope="session")
def _signing_key_folder(tmp_path_factory):
    """Saves sign with a per-user key and the lab caches exact neighbours: in tests both live in temporary
    folders, never in the real home (kernels and subprocesses the tests start inherit the variables)."""
    old = {name: os.environ.get(name) for name in (CONFIG_DIR_ENV, CACHE_DIR_ENV)}
    os.environ[CONFIG_DIR_ENV] = str(tmp_path_factory.mktemp("milvus_lab_config"))
    os.environ[CACHE_DIR_ENV] = str(tmp_path_factory.mktemp("milvus_lab_cache"))
    yield
    for name, value in old.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def key_folder(tmp_path, monkeypatch):
    """This test's own signing-key folder (not created yet): saves sign with a key found there."""
    folder = tmp_path / "config"
    monkeypatch.setenv(CONFIG_DIR_ENV, str(folder))
    return folder


@pytest.fixture
def engine(request):
    """A fresh Engine, closed after the test; a module sets ``ENGINE_BUILD_THRESHOLD`` to build indexes sooner."""
    threshold = getattr(request.module, "ENGINE_BUILD_THRESHOLD", None)
    e = Engine() if threshold is None else Engine(build_threshold=threshold)
    yield e
    e.close()


@pytest.fixture(scope="module")
def hostile_files(tmp_path_factory):
    """Files a user may hand the lab by mistake, or damaged ones (helpers.make_hostile_files), 8 columns."""
    return make_hostile_files(tmp_path_factory.mktemp("hostile_files"))


def clustered(n: int, dim: int, clusters: int = 50, seed: int = 0, spread: float = 0.15) -> np.ndarray:
    """Gaussian blobs around random centres: realistic for ANN (neighbours are meaningful)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    labels = rng.integers(0, clusters, n)
    return (centres[labels] + spread * rng.normal(size=(n, dim))).astype(np.float32)


def exact_scores(base: np.ndarray, queries: np.ndarray, metric: str = "L2") -> np.ndarray:
    """Exact float64 scores by NumPy, smaller is better (independent of the library under test)."""
    b, q = base.astype(np.float64), queries.astype(np.float64)
    if metric == "IP":
        return -(q @ b.T)
    return (q**2).sum(1)[:, None] - 2 * q @ b.T + (b**2).sum(1)[None, :]


def exact_topk(base: np.ndarray, queries: np.ndarray, k: int, metric: str = "L2") -> np.ndarray:
    """Exact neighbour positions (ties broken by position)."""
    return np.argsort(exact_scores(base, queries, metric), axis=1, kind="stable")[:, :k]


def recall(found: np.ndarray, base: np.ndarray, queries: np.ndarray, k: int, metric: str = "L2") -> float:
    """k-recall@k, tie-aware: a returned row counts when its exact score is within the true k-th score
    (plus float32 rounding), so equally distant neighbours are not counted as misses."""
    scores = exact_scores(base, queries, metric)
    kth = np.sort(scores, axis=1)[:, k - 1]
    tol = 1e-5 * np.maximum(1.0, np.abs(kth))
    hits = 0
    for qi, row in enumerate(found[:, :k]):
        row = row[row >= 0]
        hits += int((scores[qi, row] <= kth[qi] + tol[qi]).sum())
    return hits / (k * len(found))


@pytest.fixture(scope="session")
def data_64():
    base = clustered(6000, 64, seed=1)
    queries = clustered(100, 64, seed=2)
    return base, queries


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory):
    """One embedded Milvus 2.3 server for the test session (tests marked ``server``): base folder in a temporary
    directory, authorization on (root's random password kept in the test's config folder: ``info.token``),
    addressed on 127.0.0.1, stopped by its process id.

    Without the ``server`` extra this FAILS (CI must not skip it silently); deselect with ``-m "not server"``."""
    try:
        import milvus  # noqa: F401
        import pymilvus  # noqa: F401
    except ImportError as exc:
        pytest.fail(f"the server tests need the embedded Milvus server: pip install -e '.[server]' ({exc}); "
                    f"or deselect them with -m 'not server'")
    from milvus_lab.server import embedded

    folder = tmp_path_factory.mktemp("milvus_server")
    info = embedded.start(folder)
    try:
        yield info
    finally:
        embedded.stop(folder)


@pytest.fixture
def target(milvus_server):
    """A connection to the session's server (``milvus_server``) for one test, closed after it: closing drops
    every collection the test created through it, and the test fails if any could not be dropped."""
    from milvus_lab.server import connect

    t = connect(milvus_server.uri, token=milvus_server.token)
    yield t
    assert t.close() == []
    assert t.created == []
