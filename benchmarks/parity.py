"""milvus_lab in memory against a Milvus 2.3 server, on GloVe: the parity table, and a full compare on each.

1. Parity: the same index types and parameters (IVF_FLAT, IVF_SQ8, HNSW, IVF_PQ where the dimension allows,
   FLAT) measured in memory and on the server: recall side by side (must agree within 0.01 where the
   algorithms agree), build time (the server's includes loading) and QPS side by side.
2. The wall time of a full ``lab.compare`` over the index types both targets have, in memory and on the server.

Without --uri an embedded server (PyPI ``milvus``, ``pip install 'milvus-lab[server]'``) is started in a temporary
folder on 127.0.0.1 and stopped by its pid at the end.

    python benchmarks/parity.py                         # 100k GloVe vectors, 1000 queries
    python benchmarks/parity.py --n 20000 --queries 200 # quicker
    python benchmarks/parity.py --uri http://host:19530 --token user:password   # your own server / cluster
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

from milvus_lab import lab, spec
from milvus_lab.lab import parity, plot_parity
from milvus_lab.server import connect, embedded
from milvus_lab.lab.parity import common_index_types, parity_markdown


def settings_for(dataset: lab.Dataset, nlist: int, nprobe: int) -> list[tuple[str, dict, dict]]:
    """The compared settings: each type both targets have, IVF types at (nlist, nprobe), HNSW at the defaults."""
    out = []
    for index_type in common_index_types(dataset):
        build = spec.default_build_params(index_type, dataset.dim, profile=spec.SERVER_PROFILE)
        if "nlist" in build:
            build["nlist"] = nlist
        search = spec.default_search_params(index_type, 10, build, profile=spec.SERVER_PROFILE)
        if "nprobe" in search:
            search["nprobe"] = nprobe
        out.append((index_type, build, search))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="GloVe base vectors (default: %(default)s)")
    parser.add_argument("--queries", type=int, default=1000, help="query vectors (default: %(default)s)")
    parser.add_argument("--nlist", type=int, default=1024)
    parser.add_argument("--nprobe", type=int, default=16)
    parser.add_argument("--budget", default="quick", help="budget of the full compares (default: %(default)s)")
    parser.add_argument("--no-compare", action="store_true", help="only the parity table")
    parser.add_argument("--uri", help="an existing Milvus 2.x server (default: start an embedded one)")
    parser.add_argument("--token", help="'user:password' for a server with authorization on")
    parser.add_argument("--out", help="folder for parity.md, parity.csv and parity.png")
    args = parser.parse_args()

    dataset = lab.load_glove_dataset(args.n, args.queries)
    dataset.ground_truth(10)
    print(f"{dataset!r}")
    with tempfile.TemporaryDirectory(prefix="milvus_lab_parity_") as tmp:
        folder = None
        if args.uri is None:
            folder = Path(tmp) / "server"
            t = time.perf_counter()
            info = embedded.start(folder)
            uri, token = info.uri, info.token
            print(f"embedded Milvus {info.version} (pid {info.pid}) at {uri}, "
                  f"started in {time.perf_counter() - t:.1f} s")
        else:
            uri, token = args.uri, args.token
        try:
            target = connect(uri, token=token)
            print(f"target: {target.describe()}\n")
            t = time.perf_counter()
            table = parity(dataset, target, settings_for(dataset, args.nlist, args.nprobe), progress=True)
            print(f"\nparity ({time.perf_counter() - t:.0f} s), k=10, {dataset.nq} queries:\n")
            print(parity_markdown(table))
            if "error" in table.attrs:
                print(f"\nstopped: {table.attrs['error']}")
            if args.out:
                out = Path(args.out)
                out.mkdir(parents=True, exist_ok=True)
                (out / "parity.md").write_text(parity_markdown(table) + "\n")
                table.to_csv(out / "parity.csv", index=False)
                plot_parity(table).savefig(out / "parity.png", dpi=120, bbox_inches="tight")
                print(f"wrote {out}/parity.md, parity.csv, parity.png")
            if not args.no_compare:
                types = common_index_types(dataset)
                print(f"\nfull compare (budget {args.budget!r}) of {', '.join(types)}:")
                walls = {}
                for name, where in (("in memory", None), ("on the server", target)):
                    t = time.perf_counter()
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        df = lab.compare(dataset, types, budget=args.budget, target=where, progress=False)
                    walls[name] = time.perf_counter() - t
                    measured = int((df["status"] == "ok").sum())
                    print(f"  {name:>13}: {walls[name]:7.1f} s wall, {measured} settings measured"
                          + (f" (stopped: {df.attrs['error']})" if "error" in df.attrs else ""))
                print(f"  server / memory wall time: {walls['on the server'] / walls['in memory']:.1f}x")
            target.close()
        finally:
            if folder is not None:
                embedded.stop(folder)


if __name__ == "__main__":
    main()
