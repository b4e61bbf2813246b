"""Shared test data: clustered vectors with exact ground truth."""

from __future__ import annotations

import numpy as np
import pytest


def clustered(n: int, dim: int, clusters: int = 50, seed: int = 0, spread: float = 0.15) -> np.ndarray:
    """Gaussian blobs around random centres: realistic for ANN (neighbours are meaningful)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    labels = rng.integers(0, clusters, n)
    return (centres[labels] + spread * rng.normal(size=(n, dim))).astype(np.float32)


def exact_topk(base: np.ndarray, queries: np.ndarray, k: int, metric: str = "L2") -> np.ndarray:
    """Exact neighbour positions by NumPy (independent of the library under test)."""
    if metric == "IP":
        scores = -(queries @ base.T)
    else:
        scores = (queries**2).sum(1)[:, None] - 2 * queries @ base.T + (base**2).sum(1)[None, :]
    return np.argsort(scores, axis=1, kind="stable")[:, :k]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    k = truth.shape[1]
    return float(np.mean([len(set(f[:k].tolist()) & set(t.tolist())) / k for f, t in zip(found, truth)]))


@pytest.fixture(scope="session")
def data_64():
    base = clustered(6000, 64, seed=1)
    queries = clustered(100, 64, seed=2)
    return base, queries
