"""Benchmark (not a test): one `lifeboat backup` of 1,000 instance targets
whose DR block copies every snapshot to one other region with 20 copies in
flight, against the AWS emulator, next to a minimal script making the same
CreateSnapshots and CopySnapshot calls (16 and 20 at once) in the same run.

Reports the API calls by action (from the emulator's request recorder), the
copy calls per artifact, and the wall times. The emulator completes a copy
at once, so the cap on copies in flight is measured with the in-memory fake
(`cargo run --release -p lifeboat-engine --example dr_scale`). Run through
scripts/bench.sh.

usage: bench_dr.py LIFEBOAT_BINARY [TARGETS]
"""

import concurrent.futures
import time

from benchlib import REGION, Emulator, arguments

WEST = "us-west-2"


def main():
    binary, targets = arguments(__doc__, [1000])
    with Emulator("lifeboat-bench-dr-") as emu:
        ec2, west = emu.client("ec2"), emu.client("ec2", WEST)
        ids = []
        while len(ids) < targets:
            n = min(500, targets - len(ids))
            r = ec2.run_instances(ImageId="ami-12345678", MinCount=n, MaxCount=n, InstanceType="t3.micro",
                                  TagSpecifications=[{"ResourceType": "instance",
                                                      "Tags": [{"Key": "bench", "Value": "yes"}]}])
            ids += [i["InstanceId"] for i in r["Instances"]]
        ws = emu.workspace('account "main" {\n  regions = ["us-east-1"]\n}\n\n'
                           'policy "bench" {\n  account     = account.main\n  generations = 1\n\n'
                           '  select {\n    tag   = "bench"\n    value = "yes"\n  }\n'
                           '  dr {\n    regions = ["us-west-2"]\n  }\n}\n')
        lifeboat = emu.lifeboat(binary, ws)

        lifeboat("apply", "--auto-approve")

        def clear():
            for c in (ec2, west):
                snaps = [x["SnapshotId"] for page in c.get_paginator("describe_snapshots").paginate(OwnerIds=["self"])
                         for x in page["Snapshots"]]
                with concurrent.futures.ThreadPoolExecutor(16) as pool:
                    list(pool.map(lambda sid, c=c: c.delete_snapshot(SnapshotId=sid), snaps))

        # The minimal script: the same snapshots (16 at once), then one copy
        # of each to the other region (20 at once), with the same tags.
        def baseline(label):
            emu.record()
            t = time.monotonic()

            def snap(i):
                r = ec2.create_snapshots(InstanceSpecification={"InstanceId": i}, Description="bench",
                                         TagSpecifications=[{"ResourceType": "snapshot", "Tags": [
                                             {"Key": "lifeboat:policy", "Value": "bench"},
                                             {"Key": "lifeboat:backup-id", "Value": label}]}])
                return [s["SnapshotId"] for s in r["Snapshots"]]

            with concurrent.futures.ThreadPoolExecutor(16) as pool:
                made = [s for ss in pool.map(snap, ids) for s in ss]

            def copy(sid):
                west.copy_snapshot(SourceRegion=REGION, SourceSnapshotId=sid, Description="bench",
                                   TagSpecifications=[{"ResourceType": "snapshot", "Tags": [
                                       {"Key": "lifeboat:dr-source", "Value": sid}]}])

            with concurrent.futures.ThreadPoolExecutor(20) as pool:
                list(pool.map(copy, made))
            elapsed = time.monotonic() - t
            return elapsed, emu.recorded()

        t_before, base_calls = baseline("baseline-before")
        clear()
        emu.record()
        t_run, out = lifeboat("--now", "2026-11-22T10:05:00Z", "backup", "bench", "--dr-concurrency", "20")
        calls = emu.recorded()
        clear()
        t_after, _ = baseline("baseline-after")
        t_base = (t_before + t_after) / 2

        copies = calls.get("CopySnapshot", 0)
        dr_lines = [line for line in out.splitlines() if line.startswith("DR copy")]
        print(f"targets: {targets} instances (1 volume each), one policy, us-east-1 -> us-west-2")
        print(f"backup: {out.splitlines()[0] if out else ''}")
        print(f"dr: {dr_lines[0] if dr_lines else '(none)'}")
        print("API calls by action (backup and its DR copies):")
        for action, n in sorted(calls.items()):
            print(f"  {action:<24} {n}")
        print(f"copy calls per artifact: {copies / targets:.3f}; "
              f"describes in the destination and the source: {calls.get('DescribeSnapshots', 0)}")
        print(f"lifeboat backup wall time: {t_run:.2f}s (snapshots, then copies 20 at once, whole process)")
        print(f"minimal script wall time:  {t_base:.2f}s (mean of {t_before:.2f}s before and {t_after:.2f}s after; "
              f"{sum(base_calls.values())} calls each)")
        print(f"ratio: {t_run / t_base:.2f}x")


if __name__ == "__main__":
    main()
