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
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

import boto3

from bench_tick import KEY, REGION, ROOT, SECRET, actions, free_port, post


def main():
    binary = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    dbs = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    work = tempfile.mkdtemp(prefix="lifeboat-bench-recover-")
    recording = os.path.join(work, "recording.jsonl")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = dict(os.environ, MOTO_EC2_LOAD_DEFAULT_AMIS="false", MOTO_ENABLE_RECORDING="true",
               MOTO_RECORDER_FILEPATH=recording)
    server = subprocess.Popen([os.path.join(ROOT, ".venv/bin/moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(endpoint + "/moto-api/", timeout=1)
                break
            except Exception:
                time.sleep(0.2)
        kw = dict(region_name=REGION, endpoint_url=endpoint, aws_access_key_id=KEY, aws_secret_access_key=SECRET)
        ec2, rds = boto3.client("ec2", **kw), boto3.client("rds", **kw)
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
        ws = os.path.join(work, "ws")
        os.makedirs(ws)
        db_targets = "".join(f'  rds "{n}" {{\n    region = "us-east-1"\n  }}\n' for n in names)
        db_steps = "".join(f'  step "{n}" {{\n    rds = "{n}"\n  }}\n' for n in names)
        listed = ", ".join(f'"{i}"' for i in ids)
        after = ", ".join(f'"{n}"' for n in names)
        with open(os.path.join(ws, "main.lb.hcl"), "w") as f:
            f.write('account "main" {\n  regions = ["us-east-1"]\n}\n\n'
                    'policy "bench" {\n  account     = account.main\n  generations = 1\n\n'
                    '  select {\n    tag   = "bench"\n    value = "yes"\n  }\n' + db_targets + '}\n\n'
                    'recovery_scenario "bench" {\n' + db_steps +
                    f'  step "app" {{\n    instances = [{listed}]\n    after     = [{after}]\n  }}\n}}\n')
        lb_env = dict(os.environ, AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET,
                      AWS_EC2_METADATA_DISABLED="true", LIFEBOAT_AWS_MAX_ATTEMPTS="1",
                      LIFEBOAT_RESTORE_POLL_MS="200")

        def lifeboat(*args):
            t = time.monotonic()
            out = subprocess.run([binary, *args], cwd=ws, env=lb_env, capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit(f"lifeboat {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
            return time.monotonic() - t, out.stdout

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
            post(endpoint + "/moto-api/recorder/reset-recording")
            post(endpoint + "/moto-api/recorder/start-recording")
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
            post(endpoint + "/moto-api/recorder/stop-recording")
            return elapsed, actions(recording)

        t_before, base_calls = baseline("before")
        post(endpoint + "/moto-api/recorder/reset-recording")
        post(endpoint + "/moto-api/recorder/start-recording")
        t_run, out = lifeboat("--now", "2026-11-22T11:00:00Z", "recover", "bench", "--auto-approve")
        post(endpoint + "/moto-api/recorder/stop-recording")
        calls = actions(recording)
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
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
