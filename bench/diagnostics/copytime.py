#!/usr/bin/env python3
"""Reads copytime.c's records: per call site, how long its copies took, and
whether a slow copy wrote to a buffer the previous copy from that buffer
had read on another thread (the cross-core case of BENCHMARKS.md, "One
thread per core"). Usage: copytime.py /tmp/copytime.bin [slow-µs]"""
import collections
import struct
import sys

FMT = "<QQQQQiiii"
SIZE = struct.calcsize(FMT)


def main():
    data = open(sys.argv[1], "rb").read()
    slow_us = float(sys.argv[2]) if len(sys.argv) > 2 else 30.0
    mhz = float([l for l in open("/proc/cpuinfo") if "MHz" in l][0].split(":")[1])
    recs = [struct.unpack_from(FMT, data, i * SIZE) for i in range(len(data) // SIZE)]
    recs = sorted((r for r in recs if r[0]), key=lambda r: r[0])
    if not recs:
        sys.exit("no records")
    t0 = recs[0][0]
    read_by = {}  # buffer -> thread whose copy last read it
    sites = collections.defaultdict(lambda: collections.defaultdict(lambda: [0, 0, 0.0]))
    seconds = collections.defaultdict(lambda: [0, 0])
    for start, cycles, caller, src, dst, faults, cpu, tid, switches in recs:
        us = cycles / mhz
        last = read_by.get(dst)
        where = "first" if last is None else ("same thread" if last == tid else "other thread")
        read_by[src] = tid
        cell = sites[caller][where]
        cell[0] += 1
        cell[1] += us > slow_us
        cell[2] += us
        sec = seconds[int((start - t0) / mhz / 1e6)]
        sec[0] += 1
        sec[1] += us > slow_us
    for caller, kinds in sorted(sites.items(), key=lambda kv: -sum(c[0] for c in kv[1].values())):
        total = sum(c[0] for c in kinds.values())
        if total < 100:
            continue
        print(f"caller {caller:#x}: {total} copies")
        for where, (n, slow, sum_us) in sorted(kinds.items()):
            print(f"  destination last read on the {where:13s} {n:7d}  slow {100 * slow / n:5.1f}%  mean {sum_us / n:6.1f} µs")
    print("slow copies per second:", " ".join(f"{100 * s / n:.0f}%" for _, (n, s) in sorted(seconds.items())))


if __name__ == "__main__":
    main()
