"""The lab's readings of the machine (psutil): CPU seconds for the busy check, available memory, this process's RSS
and peak, each checked against an independent reader."""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest

from milvus_lab.lab import memory, timing
from milvus_lab.units import KIB, MIB

#: CPU seconds the tests burn; the kernel counts CPU time in ticks of 10 ms (USER_HZ = 100)
BURN_SECONDS = 0.3
TICKS = 0.03
#: how far the peak (VmHWM) may lag behind an RSS reading
PEAK_SLACK = 1 * MIB


def burn(seconds: float) -> float:
    """Spend ``seconds`` of this process's CPU time (by its own CPU clock, not the wall clock); returns it."""
    start = time.process_time()
    x = 0
    while time.process_time() - start < seconds:
        x += sum(range(1000))
    return time.process_time() - start


def test_own_cpu_seconds_follow_the_process_cpu_clock():
    before = timing._own_cpu_seconds()
    spent = burn(BURN_SECONDS)
    after = timing._own_cpu_seconds()
    assert before is not None and after is not None
    assert after - before == pytest.approx(spent, abs=TICKS)


def test_the_machines_busy_seconds_include_ours():
    before, own_before = timing._cpu_seconds(), timing._own_cpu_seconds()
    burn(BURN_SECONDS)
    after, own_after = timing._cpu_seconds(), timing._own_cpu_seconds()
    assert before is not None and after is not None
    busy, total = after[0] - before[0], after[1] - before[1]
    assert 0 <= busy <= total
    assert busy >= own_after - own_before - TICKS


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="compares with /proc/meminfo")
def test_available_memory_is_memavailable():
    with open("/proc/meminfo", encoding="ascii") as f:
        fields = {line.split(":")[0]: int(line.split()[1]) * KIB for line in f if line.split()[-1] == "kB"}
    # other processes allocate between the two readings: a tenth of the machine's memory is plenty of room
    assert memory.available_bytes() == pytest.approx(fields["MemAvailable"], abs=fields["MemTotal"] / 10)


def test_rss_grows_with_touched_memory_and_the_peak_stays():
    before = memory.rss_bytes()
    block = np.ones(64 * MIB, dtype=np.uint8)  # every page written
    during = memory.rss_bytes()
    assert during - before >= block.nbytes * 0.9
    # the kernel's high-water mark misses pages freed without its update (glibc returning small temporaries by
    # madvise), so it may sit a few hundred KiB below an RSS read a moment before
    assert memory.peak_rss_bytes() >= during - PEAK_SLACK
    del block
    assert memory.peak_rss_bytes() >= during - PEAK_SLACK
