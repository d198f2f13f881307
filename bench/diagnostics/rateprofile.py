#!/usr/bin/env python3
"""Reads rateprofile.sh's two perf reports: CPU per request (µs) of each
shared object and symbol in the closed loop and at the fixed rate, the
growth of each, and how evenly the growth is spread. Usage: rateprofile.py
DIR FREQ SECONDS"""
import collections
import re
import sys

LINE = re.compile(r"\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*)")


def per_request(path, samples, freq, rps, secs):
    """{(object, symbol): µs per request} from one `--sort dso,sym` report."""
    us_per_sample = 1e6 / freq
    requests = rps * secs
    out = collections.Counter()
    for line in open(path):
        m = LINE.match(line)
        if not m:
            continue
        dso = m.group(2)
        if dso.endswith(".cwasm"):
            dso = "guests (compiled wasm)"
        out[(dso, m.group(4).strip()[:100])] += (
            float(m.group(1)) / 100 * samples * us_per_sample / requests
        )
    return out


def main():
    d, freq, secs = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    runs = {}
    for line in open(f"{d}/runs"):
        mode, samples, rps = line.split()
        runs[mode] = (int(samples), float(rps))
    closed = per_request(f"{d}/closed.sym", runs["closed"][0], freq, runs["closed"][1], secs)
    fixed = per_request(f"{d}/fixed.sym", runs["fixed"][0], freq, runs["fixed"][1], secs)
    print(f"closed loop: {runs['closed'][1]:.0f} req/s; fixed rate: {runs['fixed'][1]:.0f} req/s")
    print(f"CPU per request under perf: {sum(closed.values()):.0f} µs and "
          f"{sum(fixed.values()):.0f} µs ({sum(fixed.values()) / sum(closed.values()):.2f}x)\n")
    by_dso_c, by_dso_f = collections.Counter(), collections.Counter()
    for (dso, _), v in closed.items():
        by_dso_c[dso] += v
    for (dso, _), v in fixed.items():
        by_dso_f[dso] += v
    print("| object | closed µs | fixed µs | growth |")
    print("|---|---|---|---|")
    for dso in sorted(set(by_dso_c) | set(by_dso_f), key=lambda k: -by_dso_f[k]):
        c, f = by_dso_c[dso], by_dso_f[dso]
        print(f"| {dso} | {c:.1f} | {f:.1f} | {f / c:.2f}x |" if c else f"| {dso} | 0 | {f:.1f} | - |")
    # How evenly: of the symbols that cost at least 1 µs per request in the
    # closed loop, the spread of their growth factors.
    factors = sorted(fixed[k] / v for k, v in closed.items() if v >= 1.0)
    if factors:
        q = lambda p: factors[min(len(factors) - 1, int(p * len(factors)))]
        print(f"\ngrowth of the {len(factors)} symbols at 1 µs or more in the closed loop: "
              f"quartiles {q(0.25):.2f}x, {q(0.5):.2f}x, {q(0.75):.2f}x")
    print("\nlargest growth, µs per request (closed, fixed, growth):")
    keys = sorted(set(closed) | set(fixed), key=lambda k: -(fixed[k] - closed[k]))
    for k in keys[:15]:
        print(f"  {closed[k]:6.1f} {fixed[k]:6.1f} {fixed[k] - closed[k]:+6.1f}  {k[0]}  {k[1]}")


if __name__ == "__main__":
    main()
