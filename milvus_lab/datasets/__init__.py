"""Real vectors for the lab, loaded from packages installed with milvus-lab (no downloads at run time)."""

from .glove import GLOVE_DIM, GLOVE_ROWS, glove_word_index, glove_words, load_glove

__all__ = ["GLOVE_DIM", "GLOVE_ROWS", "glove_word_index", "glove_words", "load_glove"]
