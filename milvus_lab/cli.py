"""The command line: milvus-lab demo | compare | notebooks | app | server."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

from . import numerics, spec
from .server.embedded import INSTALL_HINT

DEMO_WORDS = ("king", "paris", "computer", "frog")
DESCRIPTION = """\
Milvus 0.10's index model in memory, for Jupyter.

Run 'milvus-lab COMMAND --help' for a command's options."""
#: where `milvus-lab notebooks` copies the tutorials unless told otherwise
DEFAULT_NOTEBOOK_DIR = "milvus_lab_notebooks"
#: Voila starts a kernel per page load and cannot shut it down when the page goes (its shutdown request is refused
#: for want of an _xsrf argument), so `milvus-lab app` culls: a kernel with no page connected (a closed or reloaded
#: tab) is shut down once idle this many seconds, checked this often; a connected page's kernel is never culled
#: (MappingKernelManager.cull_connected stays False) and neither is a busy one (cull_busy False)
CULL_IDLE_SECONDS = 30
CULL_INTERVAL_SECONDS = 10
#: how often `serve` notes the server's kernels, and how long a kernel left behind gets to exit after SIGTERM
CHILDREN_POLL_SECONDS = 2.0
KERNEL_STOP_SECONDS = 10.0


def _print_neighbours(query_words: list[str], vocabulary: list[str], result, title: str) -> None:
    print(f"\n  {title}")
    for row, word in enumerate(query_words):
        names = [vocabulary[hit.id] for hit in result[row] if vocabulary[hit.id] != word][:6]
        print(f"    {word:>10} -> {', '.join(names)}")


_IVF_DEFAULTS = {**spec.default_build_params("IVF_FLAT"), **spec.default_search_params("IVF_FLAT")}


def _demo_problem(n: object, nlist: object, nprobe: object, queries: object) -> str | None:
    """The first refused demo option as '--option: why' (None: all are allowed): the counts as ints in
    range, nlist and nprobe by the spec's IVF_FLAT rules (nprobe against that nlist, at top_k 10)."""
    from .datasets import GLOVE_DIM, GLOVE_ROWS
    from .errors import MilvusLabError

    for option, value, high in (("n", n, GLOVE_ROWS), ("queries", queries, None)):
        number = spec.as_int(value)
        if number is None or number < 1 or (high is not None and number > high):
            allowed = "an int >= 1" + ("" if high is None else f" and <= {high}")
            return f"--{option} must be {allowed}; got {spec.show_value(value)}"
    try:
        _, build = spec.validate_build("IVF_FLAT", {"nlist": nlist}, dim=GLOVE_DIM, metric="L2", warn=False)
    except MilvusLabError as exc:
        return f"--nlist: {exc}"
    try:
        spec.validate_search("IVF_FLAT", {"nprobe": nprobe}, top_k=10, build_params=build)
    except MilvusLabError as exc:
        return f"--nprobe: {exc}"
    return None


class _DemoData(NamedTuple):
    """What the demo stores and searches: GloVe's first vectors (the vector of id i is the word
    vocabulary[i]), the words whose neighbours are printed with their vectors, and the query sample."""

    vectors: np.ndarray
    vocabulary: list[str]
    words: list[str]
    word_vectors: np.ndarray
    sample: np.ndarray


def _demo_data(n: int, words: Sequence[str], queries: int) -> _DemoData | None:
    """GloVe's first ``n`` words, said in one line with the time taken, and ``queries`` of their vectors drawn
    without replacement (seed 0, so every run searches the same sample; all of them when fewer). None, after
    one line on stderr, when one of ``words`` is not among the ``n``."""
    from .datasets import load_glove

    t0 = time.perf_counter()
    vectors, vocabulary = load_glove(n)
    word_ids = {w: i for i, w in enumerate(vocabulary)}
    missing = [w for w in words if w not in word_ids]
    if missing:
        print(f"error: {missing} not among the first {n:,} GloVe words", file=sys.stderr)
        return None
    print(f"Loaded {len(vectors):,} GloVe 6B word vectors of {vectors.shape[1]} dimensions "
          f"({time.perf_counter() - t0:.1f} s).")
    query_words = list(words)
    rng = np.random.default_rng(0)
    sample = vectors[rng.choice(len(vectors), size=min(queries, len(vectors)), replace=False)]
    return _DemoData(vectors, vocabulary, query_words, vectors[[word_ids[w] for w in query_words]], sample)


def _demo_fill(milvus, vectors: np.ndarray) -> None:
    """Steps 1 and 2: create the L2 collection 'glove' of the vectors' dimension and insert and flush them
    (ids 0..n-1, the word numbers), printing each call's status."""
    from . import MetricType

    print("\n1. create_collection('glove', dimension=50, metric L2)")
    status = milvus.create_collection({"collection_name": "glove", "dimension": vectors.shape[1],
                                       "index_file_size": spec.DEFAULT_INDEX_FILE_SIZE_MB,
                                       "metric_type": MetricType.L2})
    print(f"   {status}")
    t = time.perf_counter()
    status, ids = milvus.insert("glove", vectors)
    milvus.flush(["glove"])
    print(f"2. insert {len(ids):,} vectors: {status} ({time.perf_counter() - t:.2f} s); "
          f"ids are the word numbers 0..{ids[-1]:,}")


def _demo_search_flat(milvus, data: _DemoData) -> tuple[object, float]:
    """Step 3: search the sample exactly (FLAT, top_k 10) and print the throughput, then the nearest words of
    each demo word. Returns (the sample's results, the seconds they took): the reference of step 5."""
    t = time.perf_counter()
    status, flat = milvus.search("glove", 10, data.sample)
    flat_s = time.perf_counter() - t
    print(f"3. search FLAT (exact) with {len(data.sample):,} queries, top_k=10: {status.message}, "
          f"{len(data.sample) / flat_s:,.0f} queries/s")
    _, flat_words = milvus.search("glove", 7, data.word_vectors)
    _print_neighbours(data.words, data.vocabulary, flat_words, "nearest words, exact (FLAT):")
    return flat, flat_s


def _demo_create_index(milvus, nlist: int) -> bool:
    """Step 4: build IVF_FLAT with ``nlist`` in the background (a live elapsed-time line on a terminal's
    stderr, nothing when piped), print the status, then the index info and every segment. False when the
    build failed (its status is printed, nothing after it)."""
    from tqdm.auto import tqdm

    from . import IndexType

    print(f"\n4. create_index('glove', IndexType.IVF_FLAT, {{'nlist': {nlist}}})")
    t = time.perf_counter()
    future = milvus.create_index("glove", IndexType.IVF_FLAT, {"nlist": nlist}, _async=True)
    # a live elapsed-time line on a terminal; nothing when piped (a bar redrawn into a file is one line per tick)
    with tqdm(desc="   building IVF_FLAT", unit="s", bar_format="{desc}: {elapsed} elapsed", leave=False,
              file=sys.stderr, disable=not sys.stderr.isatty(), mininterval=1.0) as bar:
        while not future.done():
            time.sleep(0.25)
            bar.update(0)
    status = future.result()
    print(f"   {status} in {time.perf_counter() - t:.1f} s")
    if not status.OK():
        return False
    _, info = milvus.get_index_info("glove")
    _, stats = milvus.get_collection_stats("glove")
    segs = stats["partitions"][0]["segments"]
    print(f"   get_index_info: {info}")
    print("   segments: " + ", ".join(f"{s['name']} ({s['row_count']:,} rows, {s['index_name']})" for s in segs))
    return True


def _demo_search_ivf(milvus, data: _DemoData, nprobe: int, flat, flat_s: float) -> bool:
    """Step 5: search the sample through IVF_FLAT with ``nprobe`` and print the throughput, the speed-up over
    FLAT and recall@10 against FLAT's results ``flat`` (numerics.recall, the lab's rule), then the nearest
    words of each demo word. False, after one line on stderr, when the search is refused."""
    t = time.perf_counter()
    status, ivf = milvus.search("glove", 10, data.sample, params={"nprobe": nprobe})
    ivf_s = time.perf_counter() - t
    if not status.OK():
        print(f"milvus-lab demo: error: {status.message}", file=sys.stderr)
        return False
    recall = numerics.recall(ivf.id_array, flat.id_array, 10, base=data.vectors, queries=data.sample,
                             metric="L2")
    print(f"\n5. search IVF_FLAT with params={{'nprobe': {nprobe}}}: {len(data.sample) / ivf_s:,.0f} queries/s "
          f"({flat_s / ivf_s:.1f}x FLAT), recall@10 against FLAT = {recall:.3f}")
    _, ivf_words = milvus.search("glove", 7, data.word_vectors, params={"nprobe": nprobe})
    _print_neighbours(data.words, data.vocabulary, ivf_words, f"nearest words, IVF_FLAT nprobe={nprobe}:")
    return True


def _demo_drop_index(milvus) -> None:
    """Step 6: drop the index and print the status and the index type now (FLAT: exact search again)."""
    print("\n6. drop_index('glove'): back to FLAT (exact search)")
    status = milvus.drop_index("glove")
    _, info = milvus.get_index_info("glove")
    print(f"   {status}; index now {info.index_type}")


def demo(n: int = 100_000, nlist: int = _IVF_DEFAULTS["nlist"], nprobe: int = _IVF_DEFAULTS["nprobe"],
         queries: int = 1000,
         words: Sequence[str] = DEMO_WORDS) -> int:
    """Create a collection of GloVe words, search FLAT, build IVF_FLAT, search again, drop the index.
    Returns the exit status: 2, with one line on stderr naming the option, when an option is refused."""
    from . import Milvus

    problem = _demo_problem(n, nlist, nprobe, queries)
    if problem:
        print(f"milvus-lab demo: error: {problem}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    data = _demo_data(n, words, queries)
    if data is None:
        return 2
    milvus = Milvus()
    _demo_fill(milvus, data.vectors)
    flat, flat_s = _demo_search_flat(milvus, data)
    if not _demo_create_index(milvus, nlist):
        return 1
    if not _demo_search_ivf(milvus, data, nprobe, flat, flat_s):
        return 1
    _demo_drop_index(milvus)
    milvus.close()
    print(f"\nDone in {time.perf_counter() - t0:.1f} s.")
    return 0


# --------------------------------------------------------------------------------------------------
# notebooks / app
# --------------------------------------------------------------------------------------------------
def notebook_source() -> Path:
    """The folder holding the tutorials: the checkout's notebooks/, or the copy a `pip install .` installs."""
    for folder in (Path(__file__).resolve().parents[1] / "notebooks",
                   Path(sys.prefix) / "share" / "milvus-lab" / "notebooks"):
        if folder.is_dir() and any(folder.glob("*.ipynb")):
            return folder
    raise FileNotFoundError("the tutorial notebooks are not installed: reinstall with `pip install .` from a "
                            "checkout of milvus-lab")


def copy_notebooks(target: Path) -> tuple[list[str], list[str]]:
    """Copy the tutorials into ``target``; a file already there is kept (it may hold the user's edits).

    Returns (copied, kept) file names."""
    target.mkdir(parents=True, exist_ok=True)
    copied, kept = [], []
    for source in sorted(notebook_source().glob("*.ipynb")):
        dest = target / source.name
        if dest.exists():
            kept.append(source.name)
        else:
            shutil.copy2(source, dest)
            copied.append(source.name)
    return copied, kept


def _as_root() -> bool:
    """True when this process runs as root (e.g. in a container); False where there is no euid (Windows)."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def serve(command: list[str]) -> int:
    """Run a server ``command`` in the foreground and return its exit status.

    SIGTERM or SIGHUP to this process is passed on as SIGTERM (Voila and JupyterLab then shut their kernels
    down and exit); a kernel still alive once the server has exited is terminated too, so stopping
    ``milvus-lab app`` by its process id leaves nothing serving. Ctrl-C reaches the server from the terminal
    and the server decides (JupyterLab asks to confirm); this process waits for it."""
    import psutil

    proc = subprocess.Popen(command)
    family: dict[int, psutil.Process] = {}

    def remember_children() -> None:
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(proc.pid).children(recursive=True):
                family.setdefault(child.pid, child)

    def stop(signum: int, frame: object) -> None:
        remember_children()
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)

    handled = [s for s in (signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None]
    previous = {s: signal.signal(s, stop) for s in handled}
    previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        while True:
            try:
                code = proc.wait(timeout=CHILDREN_POLL_SECONDS)
                break
            except subprocess.TimeoutExpired:
                remember_children()  # kernels start and stop while the server runs
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    left = [p for p in family.values() if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    for p in left:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, alive = psutil.wait_procs(left, timeout=KERNEL_STOP_SECONDS)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    return code


def _run(command: list[str], dry_run: bool) -> int:
    print("$ " + " ".join(command), flush=True)
    if dry_run:
        return 0
    return serve(command)


def notebooks_command(args: argparse.Namespace, extra: list[str]) -> int:
    target = Path(args.dir)
    copied, kept = copy_notebooks(target)
    if copied:
        print(f"Copied {', '.join(copied)} to {target}/")
    if kept:
        print(f"Kept your copies of {', '.join(kept)} in {target}/ (not overwritten; delete one to get a "
              f"fresh copy)")
    command = [sys.executable, "-m", "jupyterlab", "--ip=127.0.0.1", f"--port={args.port}",
               f"--ServerApp.root_dir={target.resolve()}"]
    if args.no_browser:
        command.append("--no-browser")
    if _as_root() and "--allow-root" not in extra:
        # JupyterLab refuses to start as root without it (Voila has no such check and no such flag)
        print("Running as root (e.g. in a container): passing --allow-root to JupyterLab.")
        command.append("--allow-root")
    return _run(command + extra, args.dry_run)


def app_argv(notebook: Path, port: int, *, cull_idle: int = CULL_IDLE_SECONDS,
             cull_interval: int = CULL_INTERVAL_SECONDS) -> list[str]:
    """The Voila command of ``milvus-lab app``: 127.0.0.1 only; the kernel of a page that closed or reloaded is
    shut down once it sat idle ``cull_idle`` seconds with no page connected, and an open page's kernel is kept."""
    return [sys.executable, "-m", "voila", str(notebook), "--Voila.ip=127.0.0.1", f"--Voila.port={port}",
            f"--MappingKernelManager.cull_idle_timeout={cull_idle}",
            f"--MappingKernelManager.cull_interval={cull_interval}",
            "--MappingKernelManager.cull_connected=False", "--MappingKernelManager.cull_busy=False"]


def app_command(args: argparse.Namespace, extra: list[str]) -> int:
    command = app_argv(notebook_source() / "app.ipynb", args.port, cull_idle=args.cull_idle)
    if args.no_browser:
        command.append("--no-browser")
    return _run(command + extra, args.dry_run)


def server_command(args: argparse.Namespace, extra: list[str]) -> int:
    try:
        from .server.cli import server_main
    except ImportError as exc:
        print(f"milvus-lab server needs the server extra: {INSTALL_HINT} ({exc})", file=sys.stderr)
        return 2
    return server_main(list(args.command_argv))


def demo_command(args: argparse.Namespace, extra: list[str]) -> int:
    return demo(args.n, args.nlist, args.nprobe, args.queries, [w for w in args.words.split(",") if w])


def compare_command(args: argparse.Namespace, extra: list[str]) -> int:
    from .lab.cli import run_compare

    return run_compare(args, args.command_argv)


def forecast_command(args: argparse.Namespace, extra: list[str]) -> int:
    from .lab.forecast_cli import run_forecast

    return run_forecast(args)


def parser() -> argparse.ArgumentParser:
    """The ``milvus-lab`` parser: one sub-parser per command, each with ``func(args, extra) -> exit status``
    (``extra``: the options the command passes on to JupyterLab / Voila; empty for the others)."""
    from .lab.cli import COMPARE_DESCRIPTION, HelpFormatter, compare_parser

    top = argparse.ArgumentParser(prog="milvus-lab", description=DESCRIPTION,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands")
    p = sub.add_parser("demo", help="create a collection of GloVe words, search exactly, build IVF_FLAT, search "
                       "again, drop the index", formatter_class=HelpFormatter)
    p.add_argument("--n", type=int, default=100_000, help="GloVe words to load")
    p.add_argument("--nlist", type=int, default=_IVF_DEFAULTS["nlist"],
                   help="IVF cells (default: %(default)s, the spec's default)")
    p.add_argument("--nprobe", type=int, default=_IVF_DEFAULTS["nprobe"],
                   help="cells searched per query (default: %(default)s, the spec's default)")
    p.add_argument("--queries", type=int, default=1000, help="queries for the recall check")
    p.add_argument("--words", default=",".join(DEMO_WORDS), help="comma-separated words to show")
    p.set_defaults(func=demo_command, command_parser=p)
    p = sub.add_parser("compare", help="compare every index type on GloVe (or --data FILE): CSV, plots and a "
                       "Markdown report", description=COMPARE_DESCRIPTION, formatter_class=HelpFormatter)
    compare_parser(p)
    p.set_defaults(func=compare_command, command_parser=p)
    from .lab.forecast_cli import FORECAST_DESCRIPTION, forecast_parser

    p = sub.add_parser("forecast", help="forecast the setting each index type needs at --rows rows, and its "
                       "memory, build time, QPS and p99, from your sample", description=FORECAST_DESCRIPTION,
                       formatter_class=HelpFormatter)
    forecast_parser(p)
    p.set_defaults(func=forecast_command, command_parser=p)
    passes_on = "\nOptions it does not know are passed on to {}."
    p = sub.add_parser("notebooks", help="copy the tutorial notebooks into a working folder and open them in "
                       "JupyterLab on 127.0.0.1", formatter_class=HelpFormatter, allow_abbrev=False,
                       description="Copy the tutorial notebooks into a working folder and open JupyterLab on "
                       "127.0.0.1.\nSIGTERM stops the server and its kernels." +
                       passes_on.format("JupyterLab (e.g. --ServerApp.token=...)") +
                       "\nAs root (e.g. in a container), --allow-root is passed for you.")
    p.add_argument("--dir", default=DEFAULT_NOTEBOOK_DIR, help="working folder (your edits there are kept)")
    p.add_argument("--port", type=int, default=8888, help="JupyterLab port")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser tab")
    p.add_argument("--dry-run", action="store_true", help="copy, print the JupyterLab command, do not start it")
    p.set_defaults(func=notebooks_command, command_parser=p, passes_on=True)
    p = sub.add_parser("app", help="serve the index / search app (notebooks/app.ipynb) with Voila on 127.0.0.1",
                       formatter_class=HelpFormatter, allow_abbrev=False,
                       description="Serve the index / search app (notebooks/app.ipynb) with Voila on 127.0.0.1.\n"
                       "SIGTERM stops the server and its kernels." +
                       passes_on.format("Voila (e.g. --VoilaConfiguration.theme=dark)"))
    p.add_argument("--port", type=int, default=8866, help="Voila port")
    p.add_argument("--cull-idle", type=int, default=CULL_IDLE_SECONDS,
                   help="seconds after which the kernel of a closed or reloaded page is shut down (an open page's "
                   "kernel is kept)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser tab")
    p.add_argument("--dry-run", action="store_true", help="print the Voila command, do not start it")
    p.set_defaults(func=app_command, command_parser=p, passes_on=True)
    p = sub.add_parser("server", help=f"start, stop or check an embedded Milvus 2.3 server (needs: {INSTALL_HINT}; "
                       "see milvus-lab server --help)", add_help=False)
    p.set_defaults(func=server_command, command_parser=p, passes_on=True)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    top = parser()
    args, extra = top.parse_known_args(argv)
    if extra and not getattr(args, "passes_on", False):
        args.command_parser.error(f"unrecognized arguments: {' '.join(extra)}")
    # the words after the command, as typed (the report quotes them; the server command parses its own)
    args.command_argv = argv[argv.index(args.command) + 1:]
    return args.func(args, extra)


if __name__ == "__main__":
    sys.exit(main())
