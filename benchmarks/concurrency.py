"""QPS and p99 with 1, 10 and 20 concurrent clients, in memory and on the embedded Milvus server, beside batch QPS.

On GloVe (100k words, 50-d, 1000 queries, k=10), IVF_FLAT and HNSW are each set to the smallest search value of a
short ladder that reaches recall 0.95 on that target (checked by a batch search against the exact answer: the
server's indexes are its own builds, so its value may differ). Each setting is then timed with the lab's protocol
(``lab.measure``-style, ``Session.measure_settings``): batch QPS over interleaved rounds, then N client threads per
level sending one query per call for ``--seconds`` per level (split over the rounds; one pymilvus connection per
client on the server). The columns are the lab's: ``qps_c{N}`` (median of the rounds, with the lowest-highest
round), ``p99_ms_c{N}``; the last column is where QPS stops growing (the smallest N beyond which QPS grows less
than the spread of the rounds).

Without --uri an embedded server is started with its base folder in a temporary directory, addressed on
127.0.0.1, and stopped by its pid at the end. The machine's load during the timings is printed (other
processes' CPU share and the calibration kernel's drift, from the lab's busy-machine monitor).

    python benchmarks/concurrency.py                       # 100k GloVe, 1/10/20 clients, memory and server
    python benchmarks/concurrency.py --no-server --seconds 2
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from milvus_lab import lab
from milvus_lab.lab.timing import saturation

#: (index type, build parameters, search parameter, ladder): the ladder is walked up until recall >= target
LADDERS = [
    ("IVF_FLAT", {"nlist": 1024}, "nprobe", [8, 12, 16, 20, 24, 32, 48, 64]),
    ("HNSW", {"M": 16, "efConstruction": 200}, "ef", [16, 24, 32, 48, 64, 96, 128, 192, 256]),
]


def pick(session: lab.Session, dataset: lab.Dataset, build: lab.Build, name: str, ladder: list[int],
         target: float) -> tuple[dict[str, int], float]:
    """The smallest ladder value whose recall reaches ``target`` (or the largest, if none does), and its recall."""
    recall = 0.0
    for value in ladder:
        recall = float(session.recall_of(dataset, build, {name: value}, 10).mean())
        if recall >= target:
            return {name: value}, recall
    return {name: ladder[-1]}, recall


def run(where: str, session: lab.Session, dataset: lab.Dataset, args: argparse.Namespace) -> list[dict]:
    rows = []
    with session.running():
        for index_type, params, name, ladder in LADDERS:
            t = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                build = session.build(dataset, index_type, params)
            if not build.ok:
                print(f"  {where}: {index_type} {params}: {build.note}")
                continue
            setting, recall = pick(session, dataset, build, name, ladder, args.recall)
            row = session.measure_settings(dataset, build, [setting], k=10, repeats=args.repeats,
                                           concurrency=tuple(args.levels), concurrency_seconds=args.seconds,
                                           concurrency_batch=args.batch)[0]
            row.update(where=where, wall_s=time.perf_counter() - t)
            rows.append(row)
            print(f"  {where}: {index_type} {json.dumps(params)} {json.dumps(setting)}: recall {recall:.3f}, "
                  f"build {build.build_s:.1f} s, measured in {row['wall_s']:.0f} s"
                  + (f" [{row['note']}]" if row["note"] else ""))
    return rows


def table(rows: list[dict], levels: list[int]) -> str:
    head = (f"{'target':<10} {'index':<9} {'setting':<14} {'recall':>6} {'batch QPS':>17} "
            + " ".join(f"{f'QPS@{n}':>17}" for n in levels) + " "
            + " ".join(f"{f'p99@{n} ms':>10}" for n in levels) + f" {'stops at':>8} {'busy':>5} {'other CPU':>9}")
    lines = [head, "-" * len(head)]
    for r in rows:
        setting = ",".join(f"{k}={v}" for k, v in json.loads(r["search_params"]).items())
        cells = [f"{r['where']:<10} {r['index_type']:<9} {setting:<14} {r['recall']:>6.3f} "
                 f"{_spread(r['qps'], r['qps_lo'], r['qps_hi']):>17}"]
        cells += [f"{_spread(r[f'qps_c{n}'], r[f'qps_c{n}_lo'], r[f'qps_c{n}_hi']):>17}" for n in levels]
        cells += [f"{r[f'p99_ms_c{n}']:>10.2f}" for n in levels]
        at = saturation([r[f"qps_c{n}"] for n in levels], [r[f"qps_c{n}_lo"] for n in levels],
                        [r[f"qps_c{n}_hi"] for n in levels], levels)
        cells.append(f"{'-' if at is None else at:>8} {str(bool(r['busy'])):>5} {r['other_cpu']:>9.0%}")
        lines.append(" ".join(cells))
    return "\n".join(lines)


def _spread(value: float, lo: float, hi: float) -> str:
    return f"{value:,.0f} ({lo:,.0f}-{hi:,.0f})" if value == value else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="GloVe base vectors (default: %(default)s)")
    parser.add_argument("--queries", type=int, default=1000, help="query vectors (default: %(default)s)")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 10, 20], help="clients per level")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per setting and level (default: 3)")
    parser.add_argument("--batch", type=int, default=1, help="queries per client call (default: 1)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds (default: 3)")
    parser.add_argument("--recall", type=float, default=0.95, help="recall target of the settings (default: 0.95)")
    parser.add_argument("--no-server", action="store_true", help="in memory only")
    parser.add_argument("--uri", help="an existing Milvus 2.x server (default: start an embedded one)")
    parser.add_argument("--token", help="'user:password' for a server with authorization on")
    parser.add_argument("--start-timeout", type=float, default=600.0,
                        help="seconds the embedded server may take to start (default: %(default)s; more than "
                             "the library's 180 s because a busy machine starts it slowly)")
    args = parser.parse_args()
    levels = sorted(args.levels)

    dataset = lab.load_glove_dataset(args.n, args.queries)
    dataset.ground_truth(10)
    print(f"{dataset!r}; {args.seconds:g} s per setting and level over {args.repeats} rounds, "
          f"{args.batch} quer{'y' if args.batch == 1 else 'ies'} per call")
    rows: list[dict] = []
    monitors = {}
    started = time.perf_counter()
    with lab.Session() as session:
        rows += run("memory", session, dataset, args)
        monitors["memory"] = session.monitor.summary()
        threads = session.thread_info
    if not args.no_server:
        from milvus_lab.errors import ServerError
        from milvus_lab.server import connect, embedded

        with tempfile.TemporaryDirectory(prefix="milvus_lab_concurrency_") as tmp:
            folder = Path(tmp) / "server" if args.uri is None else None
            try:
                try:
                    if folder is not None:
                        t = time.perf_counter()
                        info = embedded.start(folder, timeout=args.start_timeout)
                        uri, token = info.uri, info.token
                        print(f"embedded Milvus {info.version} (pid {info.pid}) at {uri}, started in "
                              f"{time.perf_counter() - t:.1f} s")
                    else:
                        uri, token = args.uri, args.token
                    target = connect(uri, token=token)
                    try:
                        with lab.Session(target=target) as session:
                            rows += run("server", session, dataset, args)
                            monitors["server"] = session.monitor.summary()
                    finally:
                        target.close()
                finally:
                    if folder is not None:
                        embedded.stop(folder)  # by the pids in its state file; nothing if it never started
            except ServerError as exc:
                print(f"server part stopped: {exc}")
    print(f"\nk=10, {dataset.nq} queries; QPS: median of the rounds (lowest-highest round); 'stops at': the smallest "
          f"number of clients beyond which QPS grows less than its spread ('-': still growing at {levels[-1]})\n")
    print(table(rows, levels))
    print(f"\nwall time {time.perf_counter() - started:.0f} s; threads: {threads}")
    for where, m in monitors.items():
        print(f"machine load ({where}): {m['busy_groups']} of {m['groups']} timing groups busy; other processes used "
              f"up to {m['max_other_cpu']:.0%} of the CPUs; calibration kernel up to {m['max_drift']:.1f}x its best"
              + (" (on the server target the server's own CPU counts as another process)" if where == "server" else ""))
    ratios = [r["qps_c1"] / r["qps"] for r in rows if "qps_c1" in r and r["qps"] == r["qps"] and r["qps"] > 0]
    if ratios:
        print(f"QPS at 1 client / batch QPS: {', '.join(f'{x:.2f}' for x in ratios)} "
              f"(median {float(np.median(ratios)):.2f})")


if __name__ == "__main__":
    main()
