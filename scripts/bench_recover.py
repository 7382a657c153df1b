"""Benchmark (not a test): `lifeboat recover` of a scenario of 50 instances
(two volumes each, rebuilt from their snapshots) after 5 RDS databases,
against the AWS emulator, next to a minimal script making the same restore
calls (RegisterImage, RunInstances and DeregisterImage per instance,
RestoreDBInstanceFromDBSnapshot per database, 5 at once, databases first).

Reports the API calls by action (from the emulator's request recorder), the
calls per restored instance and database, and the wall times. The emulator
makes everything ready at once, so the waits a real recovery spends are
measured with the in-memory fake (`recovery_scale`). Run through
scripts/bench.sh.

usage: bench_recover.py LIFEBOAT_BINARY [INSTANCES] [DATABASES]
"""

import concurrent.futures
import time

from benchlib import Emulator, arguments


def main():
    binary, count, dbs = arguments(__doc__, [50, 5])
    with Emulator("lifeboat-bench-recover-") as emu:
        ec2, rds = emu.client("ec2"), emu.client("rds")
        disks = [{"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 8}},
                 {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 20}}]
        r = ec2.run_instances(ImageId="ami-12345678", MinCount=count, MaxCount=count, InstanceType="t3.micro",
                              BlockDeviceMappings=disks,
                              TagSpecifications=[{"ResourceType": "instance",
                                                  "Tags": [{"Key": "bench", "Value": "yes"}]}])
        ids = [i["InstanceId"] for i in r["Instances"]]
        names = [f"bench-db-{n}" for n in range(1, dbs + 1)]
        for n in names:
            rds.create_db_instance(DBInstanceIdentifier=n, DBInstanceClass="db.t3.micro", Engine="postgres",
                                   AllocatedStorage=20, MasterUsername="bench", MasterUserPassword="bench-pw-1")
        db_targets = "".join(f'  rds "{n}" {{\n    region = "us-east-1"\n  }}\n' for n in names)
        db_steps = "".join(f'  step "{n}" {{\n    rds = "{n}"\n  }}\n' for n in names)
        listed = ", ".join(f'"{i}"' for i in ids)
        after = ", ".join(f'"{n}"' for n in names)
        ws = emu.workspace('account "main" {\n  regions = ["us-east-1"]\n}\n\n'
                           'policy "bench" {\n  account     = account.main\n  generations = 1\n\n'
                           '  select {\n    tag   = "bench"\n    value = "yes"\n  }\n' + db_targets + '}\n\n'
                           'recovery_scenario "bench" {\n' + db_steps +
                           f'  step "app" {{\n    instances = [{listed}]\n    after     = [{after}]\n  }}\n}}\n')
        lifeboat = emu.lifeboat(binary, ws, LIFEBOAT_RESTORE_POLL_MS="200")

        lifeboat("apply", "--auto-approve")
        lifeboat("--now", "2026-11-22T10:05:00Z", "backup", "bench")
        snaps = {}
        for page in ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"]):
            for s in page["Snapshots"]:
                snaps[s["VolumeId"]] = s["SnapshotId"]
        devices = {}
        for res in ec2.describe_instances(InstanceIds=ids)["Reservations"]:
            for i in res["Instances"]:
                devices[i["InstanceId"]] = [(m["DeviceName"], m["Ebs"]["VolumeId"])
                                            for m in i["BlockDeviceMappings"]]
        db_snaps = {s["DBInstanceIdentifier"]: s["DBSnapshotIdentifier"]
                    for s in rds.describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]}

        # The minimal script: the same calls, 5 at once, databases first.
        def baseline(label):
            emu.record()
            t = time.monotonic()

            def db(n):
                rds.restore_db_instance_from_db_snapshot(DBInstanceIdentifier=f"{n}-{label}",
                                                         DBSnapshotIdentifier=db_snaps[n])

            def instance(i):
                maps = [{"DeviceName": d, "Ebs": {"SnapshotId": snaps[v], "DeleteOnTermination": d == "/dev/sda1"}}
                        for d, v in devices[i]]
                ami = ec2.register_image(Name=f"{label}-{i}", RootDeviceName="/dev/sda1",
                                         BlockDeviceMappings=maps, Architecture="x86_64")["ImageId"]
                ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, InstanceType="t3.micro",
                                  BlockDeviceMappings=[{"DeviceName": m["DeviceName"], "Ebs": {
                                      "VolumeSize": 8}} for m in maps])
                ec2.deregister_image(ImageId=ami)

            with concurrent.futures.ThreadPoolExecutor(5) as pool:
                list(pool.map(db, names))
                list(pool.map(instance, ids))
            elapsed = time.monotonic() - t
            return elapsed, emu.recorded()

        t_before, base_calls = baseline("before")
        emu.record()
        t_run, out = lifeboat("--now", "2026-11-22T11:00:00Z", "recover", "bench", "--auto-approve")
        calls = emu.recorded()
        t_after, _ = baseline("after")
        t_base = (t_before + t_after) / 2
        total = sum(calls.values())
        print(f"scenario: {count} instances (2 volumes each) after {dbs} RDS databases, us-east-1, 5 restores at once")
        print("API calls by action (lifeboat recover):")
        for action, n in sorted(calls.items()):
            print(f"  {action:<36} {n}")
        db_calls = sum(n for a, n in calls.items() if a.startswith(("Restore", "DescribeDB")))
        print(f"calls: {total} in all; per restored instance {(total - db_calls) / count:.1f}, "
              f"per database {db_calls / dbs:.1f} (the minimal script: {sum(base_calls.values())})")
        print(f"lifeboat recover wall time: {t_run:.2f}s (whole process: plan, restores, waits, records)")
        print(f"minimal script wall time:   {t_base:.2f}s (mean of {t_before:.2f}s before and {t_after:.2f}s after)")
        print(f"ratio: {t_run / t_base:.2f}x")


if __name__ == "__main__":
    main()
