"""``milvus_lab.server.parity``: the lab's parity (:mod:`milvus_lab.lab.parity`) under its older address.

Parity measures in memory and on a server through the lab, so it lives in the lab; this module only
re-exports its public names so that code importing them from here keeps working.
"""

from ..lab.parity import (
    SIDE_COLUMNS,
    common_index_types,
    default_settings,
    memory_profile,
    parity,
    parity_markdown,
    plot_parity,
)

__all__ = ["SIDE_COLUMNS", "common_index_types", "default_settings", "memory_profile", "parity",
           "parity_markdown", "plot_parity"]
