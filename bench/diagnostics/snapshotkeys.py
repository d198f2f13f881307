#!/usr/bin/env python3
"""snapshotkeys.py: what a snapshot build holds per article, apart from
the articles. Writes N articles straight into a fresh state directory's
SQLite store, then runs `wikiedge snapshot build` on it and prints the
build's time, its peak RSS (the child's `ru_maxrss`) and its RSS sampled
once a second at a quarter, half and three quarters of the run (whether
it levels off or keeps growing), for each N.

    python3 bench/diagnostics/snapshotkeys.py [--wikiedge BIN] [--bytes B] [N ...]

Default N: 10000 and 1000000. The articles are tiny by default (a few
hundred bytes each, so the key listing is most of what grows with N);
`--bytes B` adds about B bytes of wikitext and as much HTML to each. Each
binary given with --wikiedge (repeat the flag to compare two) builds a
fresh copy of the same state.
"""
import argparse
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import tempfile
import time

# The table Spin's SQLite store and wikiedge's share (host/src/kv/sqlite.rs).
CREATE = """CREATE TABLE IF NOT EXISTS spin_key_value (
    store TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
    PRIMARY KEY (store, key))"""


def make_state(path, n, extra):
    os.makedirs(path)
    db = sqlite3.connect(os.path.join(path, "sqlite_key_value.db"))
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(CREATE)
    filler = "Lorem ipsum [[dolor]] sit ''amet''.\n== Section ==\n" * (extra // 50)
    rows = []
    for i in range(n):
        name = f"Generated_article_{i:08d}"
        doc = {
            "name": name,
            "identifier": i + 1,
            "namespace": {"identifier": 0},
            "in_language": {"identifier": "en"},
            "is_part_of": {"identifier": "enwiki"},
            "date_modified": "2024-01-01T00:00:00Z",
            "article_body": {
                "wikitext": f"'''{name}''' is article {i}.\n{filler}",
                "html": f"<p>{filler}</p>",
            },
        }
        value = json.dumps(doc, separators=(",", ":")).encode()
        rows.append(("bulk", f"article:enwiki:{name}", value))
        if len(rows) == 10000:
            db.executemany("INSERT INTO spin_key_value VALUES (?,?,?)", rows)
            rows.clear()
    db.executemany("INSERT INTO spin_key_value VALUES (?,?,?)", rows)
    db.commit()
    db.close()


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def build(binary, state):
    """Runs one build; its seconds, peak RSS in KiB (in a process that
    runs nothing else, `ru_maxrss` of the children is this build's) and
    its RSS in KiB sampled once a second."""
    start = time.monotonic()
    child = subprocess.Popen(
        [binary, "snapshot", "build", "--project", "enwiki", "--state-dir", state],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    samples = []
    while child.poll() is None:
        rss = rss_kib(child.pid)
        if rss:
            samples.append(rss)
        time.sleep(1)
    if child.returncode != 0:
        raise SystemExit(f"{binary} snapshot build failed ({child.returncode})")
    seconds = time.monotonic() - start
    return seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, samples


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wikiedge", action="append")
    ap.add_argument("--bytes", type=int, default=0)
    ap.add_argument("sizes", nargs="*", type=int)
    args = ap.parse_args()
    binaries = args.wikiedge or ["target/release/wikiedge"]
    sizes = args.sizes or [10000, 1000000]
    print(
        f"{'articles':>9} {'binary':<40} {'seconds':>8} {'peak RSS':>10}"
        "   RSS at 1/4, 1/2, 3/4 of the run"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            template = os.path.join(tmp, f"state-{n}")
            make_state(template, n, args.bytes)
            for binary in binaries:
                state = os.path.join(tmp, "build")
                shutil.rmtree(state, ignore_errors=True)
                shutil.copytree(template, state)
                # A child process of its own, so ru_maxrss is this build's.
                out = subprocess.run(
                    [
                        "python3",
                        "-B",
                        "-c",
                        "import sys, json; sys.path.insert(0, sys.argv[1]);"
                        "import snapshotkeys as s;"
                        "print(json.dumps(s.build(sys.argv[2], sys.argv[3])))",
                        os.path.dirname(os.path.abspath(__file__)),
                        binary,
                        state,
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                seconds, peak, samples = json.loads(out.stdout)
                # A build shorter than a few seconds has no course to show.
                marks = [samples[len(samples) * q // 4] for q in (1, 2, 3)] if len(samples) >= 4 else []
                trend = ", ".join(f"{m / 1024:.1f}" for m in marks) or "-"
                print(
                    f"{n:>9} {binary:<40} {seconds:>8.1f} {peak / 1024:>6.1f} MiB"
                    f"   {trend} MiB"
                )
            shutil.rmtree(template)


if __name__ == "__main__":
    main()
