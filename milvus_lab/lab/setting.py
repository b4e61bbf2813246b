"""A setting as a small typed value: an index type, its build parameters and its search parameters.

Hashable and ordered, so it can key a dict or a set of tried settings; it becomes JSON only where a DataFrame
column or a file is written (:meth:`Setting.columns`), and comes back from one with :meth:`Setting.from_columns`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import spec


def _items(params: Mapping[str, Any] | None) -> tuple[tuple[str, int], ...]:
    return tuple((str(name), int(value)) for name, value in (params or {}).items())


def params_json(params: Mapping[str, Any] | None) -> str:
    """Parameters as the compact JSON the ``build_params`` / ``search_params`` columns hold."""
    return json.dumps({str(k): int(v) for k, v in (params or {}).items()})


@dataclass(frozen=True, order=True)
class Setting:
    """``index_type`` built with ``build`` and searched with ``search`` (each a tuple of (name, value))."""

    index_type: str
    build: tuple[tuple[str, int], ...] = ()
    search: tuple[tuple[str, int], ...] = ()

    @classmethod
    def of(cls, index_type: str, build: Mapping[str, Any] | None = None,
           search: Mapping[str, Any] | None = None) -> Setting:
        return cls(str(index_type), _items(build), _items(search))

    @classmethod
    def from_columns(cls, index_type: str, build_params: str, search_params: str) -> Setting:
        """The setting a result row's ``build_params`` / ``search_params`` JSON columns describe."""
        return cls.of(index_type, json.loads(build_params or "{}"), json.loads(search_params or "{}"))

    @property
    def build_params(self) -> dict[str, int]:
        return dict(self.build)

    @property
    def search_params(self) -> dict[str, int]:
        return dict(self.search)

    def with_search(self, search: Mapping[str, Any] | None) -> Setting:
        return Setting(self.index_type, self.build, _items(search))

    def columns(self) -> dict[str, str]:
        """The JSON columns of a result row."""
        return {"index_type": self.index_type, "build_params": params_json(self.build_params),
                "search_params": params_json(self.search_params)}

    def label(self) -> str:
        """``HNSW M=16, efConstruction=200; ef=64`` (the spec's one parameter formatter)."""
        parts = [spec.format_params(p) for p in (self.build_params, self.search_params) if p]
        return f"{self.index_type} " + "; ".join(parts) if parts else self.index_type
