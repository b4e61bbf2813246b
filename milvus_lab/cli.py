"""The command line: ``milvus-lab demo`` walks the create_index / drop_index story on GloVe words."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Sequence

import numpy as np

from . import spec

DEMO_WORDS = ("king", "paris", "computer", "frog")


def _print_neighbours(query_words: list[str], vocabulary: list[str], result, title: str) -> None:
    print(f"\n  {title}")
    for row, word in enumerate(query_words):
        names = [vocabulary[hit.id] for hit in result[row] if vocabulary[hit.id] != word][:6]
        print(f"    {word:>10} -> {', '.join(names)}")


def _recall(found: list[list[int]], truth: list[list[int]]) -> float:
    k = len(truth[0])
    return float(np.mean([len(set(f) & set(t)) / k for f, t in zip(found, truth)]))


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
    with tqdm(desc="   building IVF_FLAT", unit="s", bar_format="{desc}: {elapsed} elapsed", leave=True) as bar:
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
    recall = _recall(ivf.id_array, flat.id_array)
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="milvus-lab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="create, search, index and drop on GloVe words in the terminal")
    p.add_argument("--n", type=int, default=100_000, help="GloVe words to load (default 100000)")
    p.add_argument("--nlist", type=int, default=_IVF_DEFAULTS["nlist"], help="IVF cells (default: the spec's)")
    p.add_argument("--nprobe", type=int, default=_IVF_DEFAULTS["nprobe"],
                   help="cells searched per query (default: the spec's)")
    p.add_argument("--queries", type=int, default=1000, help="queries for the recall check (default 1000)")
    p.add_argument("--words", default=",".join(DEMO_WORDS), help="comma-separated words to show")
    from .lab_cli import compare_parser, run_compare

    compare_parser(sub.add_parser("compare", help="compare every index type on GloVe (or --data FILE): CSV, "
                                  "plots and a Markdown report"))
    args = parser.parse_args(argv)
    if args.command == "compare":
        return run_compare(args, argv)
    if args.command == "demo":
        return demo(args.n, args.nlist, args.nprobe, args.queries, [w for w in args.words.split(",") if w])
    return 2


if __name__ == "__main__":
    sys.exit(main())
