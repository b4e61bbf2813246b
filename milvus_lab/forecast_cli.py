"""``milvus_lab.forecast_cli``: the ``forecast`` command (:mod:`milvus_lab.lab.forecast_cli`) under its older
address.

The command lives in the lab; this module only re-exports its public names.
"""

import sys

from .lab.forecast_cli import FORECAST_DESCRIPTION, forecast_main, forecast_parser, run_forecast

__all__ = ["FORECAST_DESCRIPTION", "forecast_main", "forecast_parser", "run_forecast"]

if __name__ == "__main__":
    sys.exit(forecast_main())
