#!/usr/bin/env python3
"""snapshotkeys.py: what a snapshot build holds per article, apart from
the articles. Writes N tiny articles (a few hundred bytes each, so the key
listing is most of what grows with N) straight into a fresh state
directory's SQLite store, then runs `wikiedge snapshot build` on it and
prints the build's peak RSS (the child's `ru_maxrss`) and time, for each N.

    python3 bench/diagnostics/snapshotkeys.py [--wikiedge BIN] [N ...]

Default N: 10000 and 1000000. Each binary given with --wikiedge (repeat
the flag to compare two) builds a fresh copy of the same state.
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


def make_state(path, n):
    os.makedirs(path)
    db = sqlite3.connect(os.path.join(path, "sqlite_key_value.db"))
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(CREATE)
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
            "article_body": {"wikitext": f"'''{name}''' is article {i}."},
        }
        value = json.dumps(doc, separators=(",", ":")).encode()
        rows.append(("bulk", f"article:enwiki:{name}", value))
        if len(rows) == 10000:
            db.executemany("INSERT INTO spin_key_value VALUES (?,?,?)", rows)
            rows.clear()
    db.executemany("INSERT INTO spin_key_value VALUES (?,?,?)", rows)
    db.commit()
    db.close()


def build(binary, state):
    """Runs one build; its seconds and peak RSS in KiB (in a process that
    runs nothing else, `ru_maxrss` of the children is this build's)."""
    start = time.monotonic()
    subprocess.run(
        [binary, "snapshot", "build", "--project", "enwiki", "--state-dir", state],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    seconds = time.monotonic() - start
    return seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wikiedge", action="append")
    ap.add_argument("sizes", nargs="*", type=int)
    args = ap.parse_args()
    binaries = args.wikiedge or ["target/release/wikiedge"]
    sizes = args.sizes or [10000, 1000000]
    print(f"{'articles':>9} {'binary':<40} {'seconds':>8} {'peak RSS':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            template = os.path.join(tmp, f"state-{n}")
            make_state(template, n)
            for binary in binaries:
                state = os.path.join(tmp, "build")
                shutil.rmtree(state, ignore_errors=True)
                shutil.copytree(template, state)
                # A child process of its own, so ru_maxrss is this build's.
                out = subprocess.run(
                    [
                        "python3",
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
                seconds, peak = json.loads(out.stdout)
                print(f"{n:>9} {binary:<40} {seconds:>8.1f} {peak / 1024:>6.1f} MiB")
            shutil.rmtree(template)


if __name__ == "__main__":
    main()
