"""The parameter table of a profile: one row per parameter (:func:`parameter_table`), and the same as the
Markdown table the README embeds (:func:`parameter_table_markdown`, written there by
``scripts/update_readme_table.py``).
"""

from __future__ import annotations

from typing import Any

from .indexes import get_profile
from .model import DEFAULT_PROFILE
from .validate import describe_allowed


def parameter_table(*, profile: Any = DEFAULT_PROFILE) -> list[dict[str, str]]:
    """One row per parameter: index type, stage, parameter, allowed, recommended, default, help."""
    rows = []
    for spec in get_profile(profile).indexes.values():
        if spec.is_flat:
            rows.append({"index_type": "FLAT", "stage": "-", "parameter": "(none)", "allowed": "-",
                         "recommended": "-", "default": "-", "help": spec.description})
        for stage, params in (("build", spec.build), ("search", spec.search)):
            for name, param in params.items():
                rows.append({
                    "index_type": spec.name, "stage": stage, "parameter": name,
                    "allowed": describe_allowed(param),
                    "recommended": (f"[{param.recommended[0]}, {param.recommended[1]}]" if param.recommended
                                    else param.advice_help),
                    "default": str(param.default), "help": param.help,
                })
    return rows


def parameter_table_markdown(*, profile: Any = DEFAULT_PROFILE) -> str:
    rows = parameter_table(profile=profile)
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(r[c].replace("|", "\\|") for c in cols) + " |" for r in rows]
    return "\n".join(lines)
