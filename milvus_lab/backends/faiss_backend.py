"""Former home of the faiss adapters, kept only so ``from milvus_lab.backends.faiss_backend import
new_ivf_index`` keeps working until its last caller imports it from :mod:`milvus_lab.backends.ivf`."""

from __future__ import annotations

from .ivf import new_ivf_index

__all__ = ["new_ivf_index"]
