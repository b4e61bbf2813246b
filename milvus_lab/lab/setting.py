"""A setting as a small typed value: an index type, its build parameters and its search parameters.

Hashable and ordered, so it can key a dict or a set of tried settings: two settings with the same values are
equal whatever order their parameters were given in (they are kept in the spec's declared order) and whether a
value came as a Python or a NumPy integer. It becomes JSON only where a DataFrame column or a file is written
(:meth:`Setting.columns`), and comes back from one with :meth:`Setting.from_columns`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import spec
from ..errors import MilvusLabError, ParamError


@functools.lru_cache(maxsize=None)
def _declared(index_type: str, stage: str) -> tuple[str, ...]:
    """The parameter names the spec declares for ``index_type`` at ``stage`` ("build" or "search"), in order
    (looked up once per type and stage: the spec is fixed)."""
    for profile in spec.PROFILES:
        try:
            return tuple(getattr(spec.get_index(index_type, profile=profile), stage))
        except MilvusLabError:
            continue
    return ()


def _items(index_type: str, params: Mapping[str, Any] | None, stage: str) -> tuple[tuple[str, int], ...]:
    """``params`` as (name, int) pairs in the spec's declared order (other names after them, sorted); a value
    that is not an integer (bools and floats included) is a ParamError naming it."""
    values = {}
    for name, value in (params or {}).items():
        number = spec.as_int(value)
        if number is None:
            raise ParamError(f"{stage} parameter {name} of {index_type} must be an int; got {spec.show_value(value)}")
        values[str(name)] = number
    rank = {name: i for i, name in enumerate(_declared(index_type, stage))}
    return tuple(sorted(values.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0])))


def params_json(params: Mapping[str, Any] | None) -> str:
    """Parameters as the compact JSON the ``build_params`` / ``search_params`` columns hold."""
    return json.dumps({str(k): int(v) for k, v in (params or {}).items()})


@dataclass(frozen=True, order=True)
class Setting:
    """``index_type`` built with ``build`` and searched with ``search`` (each a tuple of (name, value) in the spec's
    order); make one with :meth:`of`, which puts the parameters in that order."""

    index_type: str
    build: tuple[tuple[str, int], ...] = ()
    search: tuple[tuple[str, int], ...] = ()

    @classmethod
    def of(cls, index_type: str, build: Mapping[str, Any] | None = None,
           search: Mapping[str, Any] | None = None) -> Setting:
        index_type = str(index_type)
        return cls(index_type, _items(index_type, build, "build"), _items(index_type, search, "search"))

    @classmethod
    def from_columns(cls, index_type: str, build_params: Any, search_params: Any) -> Setting:
        """The setting a result row's ``build_params`` / ``search_params`` JSON columns describe (an empty or
        missing column, e.g. NaN in a skipped row, reads as no parameters)."""
        def parsed(text: Any) -> Any:
            return json.loads(text) if isinstance(text, str) and text else {}

        return cls.of(index_type, parsed(build_params), parsed(search_params))

    @property
    def build_params(self) -> dict[str, int]:
        return dict(self.build)

    @property
    def search_params(self) -> dict[str, int]:
        return dict(self.search)

    def with_search(self, search: Mapping[str, Any] | None) -> Setting:
        return Setting(self.index_type, self.build, _items(self.index_type, search, "search"))

    def columns(self) -> dict[str, str]:
        """The JSON columns of a result row."""
        return {"index_type": self.index_type, "build_params": params_json(self.build_params),
                "search_params": params_json(self.search_params)}

    def label(self) -> str:
        """``HNSW M=16, efConstruction=200; ef=64`` (the spec's one parameter formatter)."""
        parts = [spec.format_params(p) for p in (self.build_params, self.search_params) if p]
        return f"{self.index_type} " + "; ".join(parts) if parts else self.index_type
