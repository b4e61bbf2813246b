"""Which law forecasts an IVF_FLAT's QPS better: a power law of the vectors a query scans, or a fixed part plus a
part per vector (the lab's law)? Forecasts 200,000 GloVe words from a random 50,000 of them with lab.forecast,
prints both laws' readings of the same timed points at the forecast setting, then builds that setting on all
200,000 words and measures it.

    python benchmarks/forecast_ivf_law.py        # about 2 minutes on 2 cores
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from milvus_lab import lab
from milvus_lab.datasets import load_glove


def main() -> None:
    warnings.simplefilter("ignore", lab.LabWarning)
    vectors, _ = load_glove(201_000)
    queries, full = vectors[-1000:], vectors[:200_000]
    sample = lab.from_array(full[np.random.default_rng(0).permutation(len(full))[:50_000]], queries, name="sample")
    fc = lab.forecast(sample, rows=len(full), index_types=["IVF_FLAT"], progress=False)
    row = fc.table.iloc[0]
    setting = lab.Setting.from_columns(row["index_type"], row["build_params"], row["search_params"])
    timed = fc.points[fc.points["phase"] == "timed"]
    work, rate = [], []
    for _, point in timed.iterrows():
        at = lab.Setting.from_columns(point["index_type"], point["build_params"], point["search_params"])
        work.append(at.search_params["nprobe"] * point["rows"] / at.build_params["nlist"] + at.build_params["nlist"])
        rate.append(point["qps"])
        print(f"{point['rows']:>7,} rows  {at.label():<34} {work[-1]:>7,.0f} vectors/query  {point['qps']:>9,.0f} QPS")
    target_work = (setting.search_params["nprobe"] * len(full) / setting.build_params["nlist"]
                   + setting.build_params["nlist"])
    slope, intercept = np.polyfit(np.log(work), np.log(rate), 1)
    power = math.exp(intercept + slope * math.log(target_work))
    print(f"forecast ({setting.label()}): {row['qps']:,.0f} QPS [{row['qps_lo']:,.0f}, {row['qps_hi']:,.0f}] "
          f"(fixed + per vector); a power law of the work: {power:,.0f}")
    full_ds = lab.from_array(full, queries, name="full")
    with lab.Session() as session, session.running():
        build = session.build(full_ds, setting.index_type, setting.build_params)
        measured = session.measure_settings(full_ds, build, [setting.search_params])[0]
    print(f"measured at {len(full):,} rows: {measured['qps']:,.0f} QPS [{measured['qps_lo']:,.0f}, "
          f"{measured['qps_hi']:,.0f}] (busy: {measured['busy']}); forecast / measured "
          f"{row['qps'] / measured['qps']:.2f}, power law / measured {power / measured['qps']:.2f}")


if __name__ == "__main__":
    main()
