"""What SQLite's secure_delete (on in every Lifeboat state since schema 21)
costs on the catalog's own table: 50,000 snapshot rows written, then
deleted 1,000 per transaction as retention deletes them, with the state's
pragmas (WAL, synchronous FULL), with secure_delete off and on.

    python3 scripts/bench_secure_delete.py [ROWS] [RUNS]
"""

import os
import sqlite3
import sys
import tempfile
import time

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
BATCH = 1_000

SCHEMA = """
CREATE TABLE backups (
    policy TEXT NOT NULL, id TEXT NOT NULL, account TEXT NOT NULL,
    started TEXT NOT NULL, finished TEXT, status TEXT NOT NULL,
    frozen_name TEXT, frozen_at TEXT, problems TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (policy, id));
CREATE TABLE snapshots (
    id TEXT PRIMARY KEY, policy TEXT NOT NULL, backup_id TEXT NOT NULL,
    target TEXT NOT NULL, volume_id TEXT NOT NULL, region TEXT NOT NULL,
    FOREIGN KEY (policy, backup_id) REFERENCES backups (policy, id));
CREATE INDEX snapshots_by_backup ON snapshots (policy, backup_id);
"""


def run(secure: bool) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as d:
        db = sqlite3.connect(os.path.join(d, "state.db"), isolation_level=None)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
        db.execute("PRAGMA foreign_keys = ON")
        db.execute(f"PRAGMA secure_delete = {'ON' if secure else 'OFF'}")
        db.executescript(SCHEMA)
        backups = ROWS // BATCH
        t = time.perf_counter()
        for b in range(backups):
            db.execute("BEGIN IMMEDIATE")
            bid = f"2026-11-{1 + b % 28:02d}T{b % 24:02d}:{b % 60:02d}:00Z-{b}"
            db.execute(
                "INSERT INTO backups (policy, id, account, started, status) VALUES ('web', ?, 'main', ?, 'success')",
                (bid, bid),
            )
            db.executemany(
                "INSERT INTO snapshots VALUES (?, 'web', ?, ?, ?, 'us-east-1')",
                [
                    (f"snap-{b:05d}{i:012x}", bid, f"i-{i:017x}", f"vol-{i:017x}")
                    for i in range(BATCH)
                ],
            )
            db.execute("COMMIT")
        written = time.perf_counter() - t
        ids = [r[0] for r in db.execute("SELECT id FROM backups")]
        t = time.perf_counter()
        for bid in ids:
            db.execute("BEGIN IMMEDIATE")
            db.execute("DELETE FROM snapshots WHERE policy = 'web' AND backup_id = ?", (bid,))
            db.execute("DELETE FROM backups WHERE policy = 'web' AND id = ?", (bid,))
            db.execute("COMMIT")
        deleted = time.perf_counter() - t
        db.close()
        return written, deleted


for secure in (False, True):
    for n in range(RUNS):
        w, d = run(secure)
        print(f"secure_delete={'on ' if secure else 'off'} run {n + 1}: write {w:.2f} s, delete {d:.2f} s")
