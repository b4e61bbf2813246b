"""Reproducibility of ``compare`` (issue 12 acceptance): two idle runs agree, a busy run keeps the order.

Three runs of the same comparison (GloVe, default 100k words, every index type), each in a fresh session:

* run A and run B on the idle machine: the same winner or the same tie; every setting both measured has
  QPS within 10 % between them;
* run C with one core kept busy by another process (a spinning subprocess): every pair of settings whose
  QPS differs by >= 30 % in run A keeps its order in run C, and C's table and report carry the busy warning.

Settings are matched by (index type, build params, search params); a sweep that stopped at another point
(recall differs on a non-deterministic build) leaves the unmatched settings out, as the output says.

    python benchmarks/reproducibility.py                 # the acceptance run (idle machine, a few minutes)
    python benchmarks/reproducibility.py --n 20000 --types FLAT,IVF_FLAT,HNSW   # a short run
    python benchmarks/reproducibility.py --threads 1     # graph builds on one thread: the same graphs each run
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from milvus_lab import lab, spec

KEY = ["index_type", "build_params", "search_params"]


def run(ds: lab.Dataset, types: list[str] | None, target: float, threads: int | None = None) -> tuple:
    started = time.perf_counter()
    df = lab.compare(ds, types, progress=False, threads=threads)
    table = lab.summary(df, target)
    ranked = table[table["rank"] != ""]["index_type"].tolist()
    verdict = ("winner" if (table["rank"] == "winner").any() else "tie", sorted(ranked))
    return df, verdict, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--nq", type=int, default=1000)
    parser.add_argument("--types", default=None, help="comma-separated index types (default: all)")
    parser.add_argument("--target", type=float, default=0.95)
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for builds and searches (1: HNSW and RNSG graphs are the same on every run)")
    parser.add_argument("--save", default=None, help="a folder to write the three runs' results to (CSV)")
    args = parser.parse_args()
    ds = lab.load_glove_dataset(args.n, args.nq)
    ds.ground_truth(10)
    types = None if args.types is None else [spec.get_index(t).name for t in args.types.split(",")]
    a, verdict_a, wall_a = run(ds, types, args.target, args.threads)
    b, verdict_b, wall_b = run(ds, types, args.target, args.threads)
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(2)
        c, verdict_c, wall_c = run(ds, types, args.target, args.threads)
    finally:
        spinner.kill()
        spinner.wait()
    failures = []
    print(f"{ds!r}; walls A {wall_a:.0f} s, B {wall_b:.0f} s, C (one core busy) {wall_c:.0f} s")
    print(f"verdict A: {verdict_a}; B: {verdict_b}; C: {verdict_c}")
    print("A:", lab.summary(a, args.target).attrs["verdict"])
    print("B:", lab.summary(b, args.target).attrs["verdict"])
    if verdict_a != verdict_b:
        failures.append(f"idle runs name different results: {verdict_a} vs {verdict_b}")
    ok = [df[df["status"] == "ok"].set_index(KEY)["qps"] for df in (a, b, c)]
    both = ok[0].index.intersection(ok[1].index)
    ratio = (ok[1][both] / ok[0][both])
    worst = (ratio - 1).abs().max()
    print(f"ACCEPTANCE idle QPS agreement: {len(both)} settings in both runs (of {len(ok[0])}, {len(ok[1])}); "
          f"worst B/A = {ratio.loc[(ratio - 1).abs().idxmax()]:.3f}; within 10 %: {(ratio - 1).abs().le(0.1).sum()} "
          f"of {len(both)}")
    far = (ratio - 1).abs().sort_values(ascending=False)
    for key in far.index[:5]:
        print(f"  B/A {ratio[key]:.3f}  {' '.join(key)}: A {ok[0][key]:,.0f} QPS, B {ok[1][key]:,.0f} QPS")
    if args.save:
        for name, df in zip("ABC", (a, b, c)):
            df.to_csv(Path(args.save) / f"run_{name}.csv", index=False)
    if worst > 0.1:
        failures.append(f"idle QPS differs by up to {worst:.0%} between runs")
    common = ok[0].index.intersection(ok[2].index)
    pairs = kept = 0
    flipped = []
    for x, y in itertools.combinations(common, 2):
        qx, qy = ok[0][x], ok[0][y]
        if max(qx, qy) / min(qx, qy) < 1.3:
            continue
        pairs += 1
        if (qx > qy) == (ok[2][x] > ok[2][y]):
            kept += 1
        else:
            flipped.append((x, y))
    print(f"ACCEPTANCE busy run: {kept} of {pairs} pairs differing by >= 30 % keep their order"
          + (f"; flipped: {flipped[:3]}" if flipped else ""))
    if flipped:
        failures.append(f"{len(flipped)} pair(s) changed order under load")
    warned = "busy machine" in lab.winner_table(c, args.target) and "busy machine" in lab.markdown_report(c)
    print(f"ACCEPTANCE busy warning in C's table and report: {warned}; "
          f"in A's: {'busy machine' in lab.markdown_report(a)}, B's: {'busy machine' in lab.markdown_report(b)}")
    if not warned:
        failures.append("the busy run carries no busy-machine warning")
    print("all acceptance checks passed" if not failures else "FAILED: " + "; ".join(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    started = time.perf_counter()
    code = main()
    print(f"({time.perf_counter() - started:.0f} s)")
    sys.exit(code)
