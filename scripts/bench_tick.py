"""Benchmark (not a test): one `lifeboat run --once` tick with 1,000 due
instance targets against the AWS emulator, next to a minimal script making
the same CreateSnapshots calls on the same emulator in the same run.

Reports the API calls the tick made, by action (from the emulator's request
recorder), the create calls per target, and the wall time of the tick against
the minimal script's. Run through scripts/bench.sh.

`--backend dynamodb` keeps the state in a DynamoDB table of the same emulator
(`lifeboat state init` first) instead of the SQLite file; the tick's state
commits are then its `TransactWriteItems` calls, counted with the rest.

usage: bench_tick.py LIFEBOAT_BINARY [TARGETS] [--backend sqlite|dynamodb]
"""

import concurrent.futures
import time

from benchlib import DYNAMODB_STATE, Emulator, arguments, backend_option


def main():
    backend = backend_option()
    binary, targets = arguments(__doc__, [1000])
    with Emulator("lifeboat-bench-") as emu:
        ec2 = emu.client("ec2")
        ids = []
        while len(ids) < targets:
            n = min(500, targets - len(ids))
            r = ec2.run_instances(ImageId="ami-12345678", MinCount=n, MaxCount=n, InstanceType="t3.micro",
                                  TagSpecifications=[{"ResourceType": "instance",
                                                      "Tags": [{"Key": "bench", "Value": "yes"}]}])
            ids += [i["InstanceId"] for i in r["Instances"]]
        ws = emu.workspace((DYNAMODB_STATE if backend == "dynamodb" else "") + 'account "main" {\n  regions = ["us-east-1"]\n}\n\n'
                           'schedule "hourly" {\n  start = "2026-11-22T00:00"\n  every = "1h"\n}\n\n'
                           'policy "bench" {\n  account     = account.main\n  generations = 1\n'
                           '  schedules   = [schedule.hourly]\n\n  select {\n    tag   = "bench"\n'
                           '    value = "yes"\n  }\n}\n')
        lifeboat = emu.lifeboat(binary, ws)

        if backend == "dynamodb":
            lifeboat("state", "init")
        t_apply, _ = lifeboat("apply", "--auto-approve")

        # The minimal script: the same CreateSnapshots calls, same tags, same
        # concurrency (16 at once in one region), nothing else. It runs before
        # and after the tick, and the tick is compared with their mean, so
        # that drifting load on the machine weighs on both sides alike. Each
        # of the three phases starts with no snapshots in the emulator.
        def snap(instance_id, label):
            ec2.create_snapshots(InstanceSpecification={"InstanceId": instance_id},
                                 Description="bench", TagSpecifications=[{"ResourceType": "snapshot", "Tags": [
                                     {"Key": "lifeboat:policy", "Value": "bench"},
                                     {"Key": "lifeboat:backup-id", "Value": label},
                                     {"Key": "lifeboat:target", "Value": instance_id}]}])

        def baseline(label):
            emu.record()
            t = time.monotonic()
            with concurrent.futures.ThreadPoolExecutor(16) as pool:
                list(pool.map(lambda i: snap(i, label), ids))
            elapsed = time.monotonic() - t
            return elapsed, emu.recorded()

        def clear():
            # Every phase starts from an emulator holding no snapshots: its
            # cost per call grows with the snapshots it holds, and the
            # comparison should not depend on the order of the phases.
            snaps = [x["SnapshotId"] for page in ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"])
                     for x in page["Snapshots"]]
            with concurrent.futures.ThreadPoolExecutor(16) as pool:
                list(pool.map(lambda sid: ec2.delete_snapshot(SnapshotId=sid), snaps))

        t_before, base_calls = baseline("baseline-before")
        clear()

        emu.record()
        t_tick, out = lifeboat("--now", "2026-11-22T10:05:00Z", "run", "--once")
        tick_calls = emu.recorded()
        finished = [line for line in out.splitlines() if "backup_finish" in line]

        clear()
        t_after, _ = baseline("baseline-after")
        t_base = (t_before + t_after) / 2

        print(f"targets: {targets} instances (1 volume each), one policy, one region; state: {backend}")
        print(f"apply (plan + apply of {targets} targets): {t_apply:.2f}s")
        print(f"tick: {finished[0] if finished else out}")
        print("tick API calls by action:")
        for action, n in sorted(tick_calls.items()):
            print(f"  {action:<24} {n}")
        creates = tick_calls.get("CreateSnapshots", 0)
        print(f"create calls per target: {creates / targets:.3f}; "
              f"tagging calls: {tick_calls.get('CreateTags', 0)}; "
              f"other calls per target: {(sum(tick_calls.values()) - creates) / targets:.4f}")
        commits = tick_calls.get("TransactWriteItems", 0)
        if backend == "dynamodb":
            print(f"state commits (TransactWriteItems): {commits} ({commits / targets:.3f} per target)")
        print(f"tick wall time:            {t_tick:.2f}s (whole process, incl. start-up and waiting for completion)")
        print(f"minimal script wall time:  {t_base:.2f}s (mean of {t_before:.2f}s before and {t_after:.2f}s after; "
              f"{sum(base_calls.values())} calls each)")
        print(f"ratio: {t_tick / t_base:.2f}x")


if __name__ == "__main__":
    main()
