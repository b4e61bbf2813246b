"""``milvus-lab compare``: compare every index type on GloVe (or your file); write CSV, plots and a report.

``--milvus-uri URI`` runs the same sweeps on a Milvus 2.x server (``pip install milvus-lab[server]``);
the collections the lab creates there are dropped at the end, and no other collection is touched.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shlex
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .. import spec
from ..errors import MilvusLabError, ParamError
from ..server.embedded import INSTALL_HINT
from .arguments import ARGUMENTS, check, check_index_types

if TYPE_CHECKING:
    import pandas as pd

    from .datasets import Dataset

DEFAULT_OUT = "lab_output"
DEFAULT_GLOVE_ROWS = 100_000


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows each option's default; options whose default is None or a flag's False say in their help
    what happens when they are omitted (no "(default: None)")."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def plain_text(text: str | None) -> str:
    """``text`` without reST markup (double backticks), for the terminal."""
    return (text or "").replace("``", "")


#: the description ``milvus-lab compare --help`` opens with
COMPARE_DESCRIPTION = plain_text(__doc__)


def _names(text: str) -> list[str]:
    """A comma-separated list of column names."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"give comma-separated column names; got {text!r}")
    return names


def _budget_help(budgets: dict) -> str:
    """What each sweep budget measures and costs, from the budgets' own numbers."""
    parts = []
    for i, (name, b) in enumerate(budgets.items()):
        steps = "a step gains" if b.patience == 1 else f"{b.patience} steps in a row gain"
        parts.append(f"{name}{' (used when not given)' if name == 'default' else ''}: "
                     f"{'raise each search parameter ' if i == 0 else ''}until recall {b.max_recall:g} or "
                     f"until {steps} < {b.min_gain:g}"
                     + (" (fewest settings, fastest)" if i == 0 else "")
                     + ("; plus builds around each type's default build (several times the builds and the time)"
                        if b.neighbour_builds else ""))
    return "how much to measure. " + ". ".join(parts)


def data_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options that say which data a command measures (``compare`` and ``forecast`` share them)."""
    parser.add_argument("--data", help="vectors file: .npy, .fvecs, .ivecs, .bvecs, .hdf5/.h5 (ann-benchmarks), "
                        ".csv or .parquet (default: the bundled GloVe 6B 50-d words)")
    parser.add_argument("--queries", help="query vectors file (default: hold out --nq rows of --data)")
    parser.add_argument("--groundtruth", help="known neighbour ids (.ivecs or .npy) for --queries (default: "
                        "computed exactly)")
    parser.add_argument("--column", help="for .csv/.parquet: the column holding one vector per row (default: "
                        "the only column of vectors, whatever scalar columns sit beside it; with no column of "
                        "vectors, every numeric column as one dimension)")
    parser.add_argument("--columns", type=_names, help="for .csv/.parquet: comma-separated numeric columns, one per "
                        "dimension (default: see --column)")
    parser.add_argument("--n", type=int, default=DEFAULT_GLOVE_ROWS, help="GloVe base words (ignored with --data)")
    parser.add_argument("--nq", type=int, default=None, help="held-out queries (default: 1000 for GloVe; for a "
                        "file, min(1000, rows/10))")
    parser.add_argument("--k", type=int, default=10, help="top_k; recall is k-recall@k")
    parser.add_argument("--metric", choices=list(spec.FLOAT_METRICS), default=None,
                        help="distance metric (default: L2, or the file's metric for .hdf5)")
    parser.add_argument("--normalize", action="store_true", help="scale vectors to unit length, cosine with IP "
                        "(default: vectors used as they are)")
    parser.add_argument("--index-types", default=None,
                        help=f"comma-separated (default: all of {','.join(spec.index_types_for_metric('L2'))})")
    return parser


def _levels(text: str) -> tuple[int, ...]:
    """``1,10,20`` as a tuple of ints (the lab checks their range)."""
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"give comma-separated client counts, e.g. 1,10,20; got {text!r}") from None


def concurrency_argument(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``--concurrency 1,10,20``: also time each setting with that many concurrent clients."""
    parser.add_argument("--concurrency", type=_levels, default=None, help="also time each setting with this many "
                        "concurrent clients sending one query at a time, e.g. 1,10,20 (adds about 3 s per setting "
                        "and level; default: not measured)")
    return parser


def run_arguments(parser: argparse.ArgumentParser, *, seed_help: str) -> argparse.ArgumentParser:
    """The options of how a measuring command runs and where it writes (``compare`` and ``forecast`` share them)."""
    from .timing import DEFAULT_LATENCY_QUERIES, DEFAULT_REPEATS

    parser.add_argument("--latency-queries", type=int, default=DEFAULT_LATENCY_QUERIES,
                        help="single-query calls timed per setting")
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS, help="timed rounds per setting, "
                        "interleaved; QPS is their median with its range")
    concurrency_argument(parser)
    parser.add_argument("--threads", type=int, default=None, help="faiss/BLAS threads during the run (default: "
                        "one per core)")
    parser.add_argument("--milvus-uri", default=None, help="run on a Milvus 2.x server at this URI (e.g. "
                        "http://127.0.0.1:19530) (default: the in-memory engine)")
    parser.add_argument("--out", default=None, help=f"output folder; each run writes into a new folder "
                        f"<date>-<time>-<dataset> inside it, or into it directly when it is new or empty "
                        f"(default: a new folder under {DEFAULT_OUT}/)")
    parser.add_argument("--formats", default="png,svg", help="plot formats, comma-separated")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (default: a progress bar "
                        "on stderr when it is a terminal; none in a log file)")
    parser.add_argument("--seed", type=int, default=0, help=seed_help)
    return parser


def compare_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The ``compare`` arguments (added to ``parser`` when given, e.g. a sub-command of ``milvus-lab``)."""
    from .sweeps import BUDGETS

    if parser is None:
        parser = argparse.ArgumentParser(prog="milvus-lab compare", description=COMPARE_DESCRIPTION,
                                         formatter_class=HelpFormatter)
    data_arguments(parser)
    parser.add_argument("--budget", choices=list(BUDGETS), default="default", help=_budget_help(BUDGETS))
    parser.add_argument("--time-limit", type=float, default=None, help="seconds after which extra builds and "
                        "search points are skipped (default: no limit)")
    parser.add_argument("--target-recall", type=float, default=0.95, help="recall target of the winner table")
    run_arguments(parser, seed_help="seed of the query split")
    return parser


def load_dataset(args: argparse.Namespace):
    """The dataset the data options name (the bundled GloVe words by default)."""
    from .. import lab
    from .datasets import cli_spelling

    if args.data is None:
        if args.queries or args.groundtruth or args.column or args.columns:
            raise SystemExit("--queries/--groundtruth/--column/--columns need --data")
        return lab.load_glove_dataset(args.n, args.nq or lab.datasets.DEFAULT_QUERIES, metric=args.metric or "L2",
                                      normalize=args.normalize, seed=args.seed)
    with cli_spelling():  # messages name --column, --nq, ... rather than Python keywords
        return lab.load(args.data, queries=args.queries, groundtruth=args.groundtruth, column=args.column,
                        columns=args.columns, n_queries=args.nq if args.queries is None else None,
                        metric=args.metric, normalize=args.normalize, seed=args.seed)


def run_folder(out: str | os.PathLike | None, dataset_name: str) -> Path:
    """A new, empty folder for one run, so no file of an earlier run sits beside this run's.

    ``out`` None: ``lab_output/<date>-<time>-<dataset>``. ``out`` given: itself when it does not exist or
    is an empty folder, otherwise a new ``<date>-<time>-<dataset>`` folder inside it (``-2``, ``-3``...
    when that name is taken)."""
    base = Path(DEFAULT_OUT if out is None else out)
    if out is not None and (not base.exists() or (base.is_dir() and not any(base.iterdir()))):
        base.mkdir(parents=True, exist_ok=True)
        return base
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in dataset_name) or "data"
    stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{safe}"
    base.mkdir(parents=True, exist_ok=True)
    for i in range(1, 1000):
        folder = base / (stem if i == 1 else f"{stem}-{i}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise FileExistsError(f"{base / stem}: 999 runs in the same second")


def output_folder(out: str | os.PathLike | None, dataset_name: str) -> Path:
    """:func:`run_folder`; an OSError it raises is raised again with a message naming ``--out`` and the folder
    the run folder was to be made in."""
    try:
        return run_folder(out, dataset_name)
    except OSError as exc:
        raise OSError(f"--out: cannot create an output folder under {out or DEFAULT_OUT}: {exc}") from exc


def refuse(command: str, message: object, out: Path | None = None) -> int:
    """Print ``milvus-lab <command>: error: <message>`` on stderr, remove the run folder ``out`` when it is an
    empty folder (a refused run leaves no empty folder behind), and return 2, a refused command's exit status."""
    print(f"milvus-lab {command}: error: {message}", file=sys.stderr)
    if out is not None and out.is_dir() and not any(out.iterdir()):
        out.rmdir()
    return 2


def plot_formats() -> set[str]:
    """The file formats matplotlib can write here (png, svg, pdf, ...)."""
    from matplotlib.figure import Figure

    return set(Figure().canvas.get_supported_filetypes())


def formats_option(text: str) -> list[str]:
    """``--formats png,svg`` as a list of formats (none when ``text`` names none); a ParamError naming
    ``--formats``, the unknown formats and the allowed ones when matplotlib cannot write one of them."""
    formats = [f.strip() for f in text.split(",") if f.strip()]
    known = plot_formats()
    unknown = [f for f in formats if f not in known]
    if unknown:
        raise ParamError(f"--formats: unknown plot format(s) {', '.join(unknown)}; allowed: {', '.join(sorted(known))}")
    return formats


def _option_error(name: str, exc: MilvusLabError) -> ParamError:
    """A lab argument's error as the error of its option: ``--<option>: <message>`` (a message opening with
    ``<name>: `` drops those words: the option says them)."""
    message = str(exc)
    return ParamError(f"--{name.replace('_', '-')}: {message.removeprefix(f'{name}: ')}")


def index_types_option(text: str | None) -> list[str] | None:
    """``--index-types FLAT,HNSW`` as the checked index type names (:func:`~milvus_lab.lab.arguments.
    check_index_types`: known to the spec, duplicates dropped), None when not given; a ParamError naming
    ``--index-types`` and the allowed names otherwise."""
    if text is None:
        return None
    try:
        return check_index_types([name.strip() for name in text.split(",") if name.strip()])
    except MilvusLabError as exc:
        raise _option_error("index_types", exc) from None


class CheckedOptions(NamedTuple):
    """The options of ``compare`` / ``forecast`` that are used in another form than they are parsed in."""

    index_types: list[str] | None
    formats: list[str]


def check_options(args: argparse.Namespace) -> CheckedOptions:
    """Every option of a parsed ``compare`` or ``forecast`` whose allowed values are known before the data is
    read, checked in the order the parser declares them: each one the lab's argument table
    (:data:`~milvus_lab.lab.arguments.ARGUMENTS`) has, ``--index-types``, ``--concurrency`` and ``--formats``
    (against what matplotlib can write). The first refused one raises a ParamError ``--<option>: <what is
    allowed>; got <value>``. Limits that depend on the data (``--nq``, ``--rows`` against the sample, ``--k``
    against the rows) are the loaders' and the lab's."""
    from .timing import check_concurrency

    index_types, formats = None, []
    for name, value in vars(args).items():
        if name == "index_types":
            index_types = index_types_option(value)
        elif name == "formats":
            formats = formats_option(value)
        elif name in ARGUMENTS or name == "concurrency":
            try:
                if name == "concurrency":
                    check_concurrency(value)
                else:
                    check(name, value)
            except ParamError as exc:
                raise _option_error(name, exc) from None
    return CheckedOptions(index_types, formats)


def declared_options(build: Callable[[argparse.ArgumentParser], object] | None = None) -> list[argparse.Action]:
    """The options ``build`` (default: :func:`compare_parser`) adds to a parser, in the order it adds them: the
    actions ``add_argument`` returned, recorded as they are made."""
    declared: list[argparse.Action] = []

    class Recording(argparse.ArgumentParser):
        def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
            action = super().add_argument(*args, **kwargs)
            declared.append(action)
            return action

    (build or compare_parser)(Recording(add_help=False))
    return declared


def _option_value(value: object) -> str:
    """An option's parsed value as it is typed: a list or tuple comma-separated (``--concurrency 1,10``)."""
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def command_line(args: argparse.Namespace | None, argv: Sequence[str] | None = None) -> str:
    """The command as typed, shell-quoted: from ``argv`` when known, else rebuilt from the parsed ``args``
    (each declared option whose value differs from its default, in the parser's order)."""
    if argv is None:
        argv = []
        for action in declared_options():
            value = getattr(args, action.dest, None) if args is not None else None
            if not action.option_strings or value == action.default:
                continue
            argv += [action.option_strings[0]] + ([] if action.nargs == 0 else [_option_value(value)])
    return " ".join(["milvus-lab", "compare", *(shlex.quote(str(a)) for a in argv)])


def prepare_run(args: argparse.Namespace, command: str) -> tuple[CheckedOptions, Dataset] | int:
    """The first steps of a ``compare`` or ``forecast`` run: matplotlib set to draw without a screen, every
    option checked (:func:`check_options`), the data loaded; or, when one of them fails, the one-line refusal
    and exit status 2 (:func:`refuse`)."""
    import matplotlib

    matplotlib.use("Agg")
    try:
        return check_options(args), load_dataset(args)
    except (MilvusLabError, OSError, ValueError) as exc:
        return refuse(command, exc)


def run_compare(args: argparse.Namespace, argv: Sequence[str] | None = None) -> int:
    """Run a parsed ``compare``: load, compare, write results.csv, plots and report.md, print the winners."""
    from .. import lab

    started = time.perf_counter()
    prepared = prepare_run(args, "compare")
    if isinstance(prepared, int):
        return prepared
    options, dataset = prepared
    print(f"{dataset!r}")
    try:
        out = output_folder(args.out, dataset.name)
    except OSError as exc:
        return refuse("compare", exc)
    try:
        target = None if args.milvus_uri is None else connect_target(args.milvus_uri)
        # skipped and unindexed types are stated once, in the winner table and the report: the notices the
        # sweep prints above its progress bar (or warns) are held back here; they come back as data in
        # results.attrs["notices"], and only those the results do not say are shown below
        with lab.Session(target=target, threads=args.threads, repeats=args.repeats) as session, \
                warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore", lab.LabWarning)
            results = lab.compare(dataset, options.index_types, k=args.k, budget=args.budget, session=session,
                                  latency_queries=args.latency_queries, time_limit=args.time_limit,
                                  concurrency=args.concurrency,
                                  progress=not args.no_progress and sys.stderr.isatty())
    except (MilvusLabError, MemoryError, ImportError, ValueError) as exc:
        return refuse("compare", exc, out)
    wall = time.perf_counter() - started
    for notice in unsaid_notices(results):
        print(notice)
    results.to_csv(out / "results.csv", index=False)
    plots = []
    if (results["status"] == "ok").any():
        plots = lab.save_plots(results, out, options.formats)
    command = command_line(args if argv is None else None, argv)
    report = lab.markdown_report(results, args.target_recall, title=f"Index comparison on {dataset.name}",
                                 plots=plots, command=command, wall_s=wall)
    (out / "report.md").write_text(report, encoding="utf-8")
    print()
    print(lab.winner_table(results, args.target_recall))
    print(f"\nWrote results.csv, report.md and {len(plots)} plot file(s) in {wall:.1f} s to the new folder\n"
          f"  {out}")
    print(peak_memory_line(dataset.base.nbytes))
    if results.attrs.get("error"):
        print(f"milvus-lab compare: error: {results.attrs['error']} (the rows measured before it are in "
              f"{out / 'results.csv'})", file=sys.stderr)
        return 1
    return 0


def unsaid_notices(results: pd.DataFrame) -> list[str]:
    """The notices of a compare run (``results.attrs["notices"]``, :class:`~milvus_lab.lab.sweeps.Notice`) that
    no row's note already says (``in_row`` False): a skipped type's reason is in its row, a server error's "rows
    measured so far are kept" is not. Plain strings (a frame made elsewhere) count as unsaid."""
    return [str(notice) for notice in results.attrs.get("notices", [])
            if str(notice).strip() and not getattr(notice, "in_row", False)]


def peak_memory_line(data_bytes: int) -> str:
    """The run's peak resident memory against the size of the base vectors (the user's first sizing figure)."""
    from ..units import MIB
    from .memory import peak_rss_bytes

    peak = peak_rss_bytes()
    return (f"Peak memory: {peak / MIB:,.0f} MiB, {peak / max(data_bytes, 1):.2f} x the "
            f"{data_bytes / MIB:,.0f} MiB of base vectors")


def connect_target(uri: str):
    """A Target for the Milvus server at ``uri`` (the optional server extra)."""
    try:
        from ..server.target import connect
    except ImportError as exc:
        raise ImportError(f"--milvus-uri needs the server extra: {INSTALL_HINT} ({exc})") from None
    return connect(uri)


def compare_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``milvus-lab compare`` (``argv`` without the program and command names)."""
    args = compare_parser().parse_args(argv)
    return run_compare(args, list(argv) if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    sys.exit(compare_main())
