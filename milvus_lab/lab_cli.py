"""``milvus_lab.lab_cli``: the ``compare`` command (:mod:`milvus_lab.lab.cli`) under its older address.

The command lives in the lab; this module only re-exports its public names.
"""

import sys

from .lab.cli import (
    COMPARE_DESCRIPTION,
    DEFAULT_GLOVE_ROWS,
    DEFAULT_OUT,
    HelpFormatter,
    command_line,
    compare_main,
    compare_parser,
    concurrency_argument,
    connect_target,
    data_arguments,
    load_dataset,
    peak_memory_line,
    plain_text,
    run_compare,
    run_folder,
)

__all__ = ["COMPARE_DESCRIPTION", "DEFAULT_GLOVE_ROWS", "DEFAULT_OUT", "HelpFormatter", "command_line",
           "compare_main", "compare_parser", "concurrency_argument", "connect_target", "data_arguments",
           "load_dataset", "peak_memory_line", "plain_text", "run_compare", "run_folder"]

if __name__ == "__main__":
    sys.exit(compare_main())
