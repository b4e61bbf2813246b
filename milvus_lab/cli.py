"""The command line: milvus-lab demo | compare | notebooks | app | server."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from . import numerics, spec

DEMO_WORDS = ("king", "paris", "computer", "frog")
DESCRIPTION = """\
Milvus 0.10's index model in memory, for Jupyter.

commands:
  demo       create a collection of GloVe words, search exactly, build IVF_FLAT, search again, drop the index
  compare    compare every index type on GloVe (or your vectors file): CSV, plots and a Markdown report
  notebooks  copy the tutorial notebooks into a working folder and open them in JupyterLab
  app        serve the index / search app (notebooks/app.ipynb) with Voila on 127.0.0.1
  server     start, stop or check an embedded Milvus 2.3 server (needs: pip install 'milvus-lab[server]')

Run 'milvus-lab COMMAND --help' for a command's options."""
#: where `milvus-lab notebooks` copies the tutorials unless told otherwise
DEFAULT_NOTEBOOK_DIR = "milvus_lab_notebooks"
#: seconds a Voila kernel may sit idle (tab closed) before it is shut down, and how often that is checked
CULL_IDLE_SECONDS = 300
CULL_INTERVAL_SECONDS = 60


def _print_neighbours(query_words: list[str], vocabulary: list[str], result, title: str) -> None:
    print(f"\n  {title}")
    for row, word in enumerate(query_words):
        names = [vocabulary[hit.id] for hit in result[row] if vocabulary[hit.id] != word][:6]
        print(f"    {word:>10} -> {', '.join(names)}")


_IVF_DEFAULTS = {**spec.default_build_params("IVF_FLAT"), **spec.default_search_params("IVF_FLAT")}


def demo(n: int = 100_000, nlist: int = _IVF_DEFAULTS["nlist"], nprobe: int = _IVF_DEFAULTS["nprobe"],
         queries: int = 1000,
         words: Sequence[str] = DEMO_WORDS) -> int:
    """Create a collection of GloVe words, search FLAT, build IVF_FLAT, search again, drop the index."""
    from tqdm.auto import tqdm

    from . import IndexType, MetricType, Milvus
    from .datasets import load_glove

    t0 = time.perf_counter()
    vectors, vocabulary = load_glove(n)
    word_ids = {w: i for i, w in enumerate(vocabulary)}
    missing = [w for w in words if w not in word_ids]
    if missing:
        print(f"error: {missing} not among the first {n:,} GloVe words", file=sys.stderr)
        return 2
    print(f"Loaded {len(vectors):,} GloVe 6B word vectors of {vectors.shape[1]} dimensions "
          f"({time.perf_counter() - t0:.1f} s).")

    milvus = Milvus()
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

    query_words = list(words)
    wq = vectors[[word_ids[w] for w in query_words]]
    rng = np.random.default_rng(0)
    sample = vectors[rng.choice(len(vectors), size=min(queries, len(vectors)), replace=False)]

    t = time.perf_counter()
    status, flat = milvus.search("glove", 10, sample)
    flat_s = time.perf_counter() - t
    print(f"3. search FLAT (exact) with {len(sample):,} queries, top_k=10: {status.message}, "
          f"{len(sample) / flat_s:,.0f} queries/s")
    _, flat_words = milvus.search("glove", 7, wq)
    _print_neighbours(query_words, vocabulary, flat_words, "nearest words, exact (FLAT):")

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
        return 1
    _, info = milvus.get_index_info("glove")
    _, stats = milvus.get_collection_stats("glove")
    segs = stats["partitions"][0]["segments"]
    print(f"   get_index_info: {info}")
    print("   segments: " + ", ".join(f"{s['name']} ({s['row_count']:,} rows, {s['index_name']})" for s in segs))

    t = time.perf_counter()
    status, ivf = milvus.search("glove", 10, sample, params={"nprobe": nprobe})
    ivf_s = time.perf_counter() - t
    recall = numerics.recall(ivf.id_array, flat.id_array, 10, base=vectors, queries=sample, metric="L2")
    print(f"\n5. search IVF_FLAT with params={{'nprobe': {nprobe}}}: {len(sample) / ivf_s:,.0f} queries/s "
          f"({flat_s / ivf_s:.1f}x FLAT), recall@10 against FLAT = {recall:.3f}")
    _, ivf_words = milvus.search("glove", 7, wq, params={"nprobe": nprobe})
    _print_neighbours(query_words, vocabulary, ivf_words, f"nearest words, IVF_FLAT nprobe={nprobe}:")

    print("\n6. drop_index('glove'): back to FLAT (exact search)")
    status = milvus.drop_index("glove")
    _, info = milvus.get_index_info("glove")
    print(f"   {status}; index now {info.index_type}")
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


def _run(command: list[str], dry_run: bool) -> int:
    print("$ " + " ".join(command), flush=True)
    if dry_run:
        return 0
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 0


def notebooks_command(args: argparse.Namespace) -> int:
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
    return _run(command, args.dry_run)


def app_argv(notebook: Path, port: int, *, cull_idle: int = CULL_IDLE_SECONDS,
             cull_interval: int = CULL_INTERVAL_SECONDS) -> list[str]:
    """The Voila command of ``milvus-lab app``: 127.0.0.1 only, and a closed tab's kernel shut down after it
    sat idle ``cull_idle`` seconds (Voila starts one kernel per page load and keeps it otherwise)."""
    return [sys.executable, "-m", "voila", str(notebook), "--Voila.ip=127.0.0.1", f"--Voila.port={port}",
            f"--MappingKernelManager.cull_idle_timeout={cull_idle}",
            f"--MappingKernelManager.cull_interval={cull_interval}"]


def app_command(args: argparse.Namespace) -> int:
    command = app_argv(notebook_source() / "app.ipynb", args.port, cull_idle=args.cull_idle)
    if args.no_browser:
        command.append("--no-browser")
    return _run(command, args.dry_run)


def server_command(argv: Sequence[str]) -> int:
    try:
        from .server.cli import server_main
    except ImportError as exc:
        print(f"milvus-lab server needs the server extra: pip install 'milvus-lab[server]' ({exc})",
              file=sys.stderr)
        return 2
    return server_main(list(argv))


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="milvus-lab", description=DESCRIPTION,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    defaults = argparse.ArgumentDefaultsHelpFormatter
    p = sub.add_parser("demo", help="create, search, index and drop on GloVe words in the terminal",
                       formatter_class=defaults)
    p.add_argument("--n", type=int, default=100_000, help="GloVe words to load")
    p.add_argument("--nlist", type=int, default=_IVF_DEFAULTS["nlist"], help="IVF cells (the spec's default)")
    p.add_argument("--nprobe", type=int, default=_IVF_DEFAULTS["nprobe"],
                   help="cells searched per query (the spec's default)")
    p.add_argument("--queries", type=int, default=1000, help="queries for the recall check")
    p.add_argument("--words", default=",".join(DEMO_WORDS), help="comma-separated words to show")
    sub.add_parser("compare", help="compare every index type on GloVe (or --data FILE): CSV, plots and a "
                   "Markdown report (see milvus-lab compare --help)", add_help=False)
    p = sub.add_parser("notebooks", help="copy the tutorials into a folder and open JupyterLab on 127.0.0.1",
                       formatter_class=defaults)
    p.add_argument("--dir", default=DEFAULT_NOTEBOOK_DIR, help="working folder (your edits there are kept)")
    p.add_argument("--port", type=int, default=8888, help="JupyterLab port")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser tab")
    p.add_argument("--dry-run", action="store_true", help="copy, print the JupyterLab command, do not start it")
    p = sub.add_parser("app", help="serve the index / search app with Voila on 127.0.0.1", formatter_class=defaults)
    p.add_argument("--port", type=int, default=8866, help="Voila port")
    p.add_argument("--cull-idle", type=int, default=CULL_IDLE_SECONDS,
                   help="seconds after which an idle kernel (a closed tab) is shut down")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser tab")
    p.add_argument("--dry-run", action="store_true", help="print the Voila command, do not start it")
    sub.add_parser("server", help="start | stop | status of an embedded Milvus 2.3 server (see milvus-lab "
                   "server --help)", add_help=False)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "compare":  # the compare and server commands parse their own options
        from .lab_cli import compare_main

        return compare_main(argv[1:])
    if argv and argv[0] == "server":
        return server_command(argv[1:])
    args = parser().parse_args(argv)
    if args.command == "demo":
        return demo(args.n, args.nlist, args.nprobe, args.queries, [w for w in args.words.split(",") if w])
    if args.command == "notebooks":
        return notebooks_command(args)
    if args.command == "app":
        return app_command(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
