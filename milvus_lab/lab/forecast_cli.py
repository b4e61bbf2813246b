"""``milvus-lab forecast``: what each index type needs and costs at the size you will deploy, from your sample.

Measures every index type on nested random subsets of the data (the same queries, each subset's own exact
neighbours), fits how the search parameter the recall target needs, the index memory, the build time, the
batch QPS and the p99 latency grow with the rows, and forecasts them at --rows with 95 % intervals, beside the
Milvus sizing tool's memory formula and the query nodes it needs. Writes forecast.csv (one row per index
type), forecast_points.csv (every measurement), forecast.md and the plot into a new output folder.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from ..errors import MilvusLabError
from .cli import (
    HelpFormatter,
    prepare_run,
    connect_target,
    data_arguments,
    output_folder,
    plain_text,
    refuse,
    run_arguments,
)

FORECAST_DESCRIPTION = plain_text(__doc__)


def forecast_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The ``forecast`` arguments (added to ``parser`` when given, e.g. a sub-command of ``milvus-lab``)."""
    from .forecasting import DEFAULT_MIN_ROWS, DEFAULT_STEPS
    from .sizing import DEFAULT_QUERY_NODE_GB

    if parser is None:
        parser = argparse.ArgumentParser(prog="milvus-lab forecast", description=FORECAST_DESCRIPTION,
                                         formatter_class=HelpFormatter)
    parser.add_argument("--rows", type=int, required=True, help="the number of rows you will deploy (at least the "
                        "sample's base rows), e.g. 10000000")
    data_arguments(parser)
    parser.add_argument("--target-recall", type=float, default=0.95, help="the recall each setting must keep")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="sample sizes measured: the sample and "
                        "its halves")
    parser.add_argument("--min-rows", type=int, default=DEFAULT_MIN_ROWS, help="the smallest subset measured")
    parser.add_argument("--machine-memory-gb", type=float, default=None, help="memory to check each setting "
                        "against (default: this machine's)")
    parser.add_argument("--query-node-gb", type=float, default=DEFAULT_QUERY_NODE_GB,
                        help="size of a Milvus 2.x query node for the cluster advice")
    run_arguments(parser, seed_help="seed of the query split and of the subsets")
    return parser


def run_forecast(args: argparse.Namespace) -> int:
    """Run a parsed ``forecast``: load, forecast, write the files, print the summary."""
    from .. import lab

    started = time.perf_counter()
    prepared = prepare_run(args, "forecast")
    if isinstance(prepared, int):
        return prepared
    options, dataset = prepared
    try:  # the output folder is made before the run, so a bad --out costs nothing
        out = output_folder(args.out, f"forecast-{dataset.name}")
    except OSError as exc:
        return refuse("forecast", exc)
    print(f"{dataset!r}")
    progress = not args.no_progress and sys.stderr.isatty()
    try:
        target = None
        if args.milvus_uri is not None:
            target = connect_target(args.milvus_uri)
        result = lab.forecast(dataset, args.rows, options.index_types, target_recall=args.target_recall, k=args.k,
                              steps=args.steps, min_rows=args.min_rows, machine_memory_gb=args.machine_memory_gb,
                              query_node_gb=args.query_node_gb, target=target,
                              latency_queries=args.latency_queries, repeats=args.repeats, threads=args.threads,
                              concurrency=args.concurrency,
                              progress=progress, seed=args.seed)
    except (MilvusLabError, MemoryError, ImportError, ValueError) as exc:
        return refuse("forecast", exc, out)
    result.table.to_csv(out / "forecast.csv", index=False)
    result.points.to_csv(out / "forecast_points.csv", index=False)
    (out / "forecast.md").write_text(result.to_markdown(), encoding="utf-8")
    import matplotlib

    figure = result.plot()
    written = []
    with matplotlib.rc_context({"svg.hashsalt": "milvus-lab"}):  # the same forecast gives the same files
        for fmt in options.formats:
            figure.savefig(out / f"forecast.{fmt}", dpi=110, metadata=_STABLE_METADATA.get(fmt))
            written.append(f"forecast.{fmt}")
    print()
    print(result.summary())
    print(f"\nWrote forecast.csv, forecast_points.csv, forecast.md and {', '.join(written) or 'no plot'} in "
          f"{time.perf_counter() - started:.1f} s to the new folder\n  {out}")
    return 1 if result.error else 0


#: file metadata that would change between two saves of the same figure (a date), left out
_STABLE_METADATA = {"svg": {"Date": None}, "pdf": {"CreationDate": None, "ModDate": None}}


def forecast_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``milvus-lab forecast`` (``argv`` without the program and command names)."""
    return run_forecast(forecast_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(forecast_main())
