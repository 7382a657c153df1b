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
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

import boto3

from bench_tick import KEY, REGION, ROOT, SECRET, actions, free_port, post

WEST = "us-west-2"


def main():
    binary = sys.argv[1]
    targets = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    work = tempfile.mkdtemp(prefix="lifeboat-bench-dr-")
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

        def client(region):
            return boto3.client("ec2", region_name=region, endpoint_url=endpoint,
                                aws_access_key_id=KEY, aws_secret_access_key=SECRET)

        ec2, west = client(REGION), client(WEST)
        ids = []
        while len(ids) < targets:
            n = min(500, targets - len(ids))
            r = ec2.run_instances(ImageId="ami-12345678", MinCount=n, MaxCount=n, InstanceType="t3.micro",
                                  TagSpecifications=[{"ResourceType": "instance",
                                                      "Tags": [{"Key": "bench", "Value": "yes"}]}])
            ids += [i["InstanceId"] for i in r["Instances"]]
        ws = os.path.join(work, "ws")
        os.makedirs(ws)
        with open(os.path.join(ws, "main.lb.hcl"), "w") as f:
            f.write('account "main" {\n  regions = ["us-east-1"]\n}\n\n'
                    'policy "bench" {\n  account     = account.main\n  generations = 1\n\n'
                    '  select {\n    tag   = "bench"\n    value = "yes"\n  }\n'
                    '  dr {\n    regions = ["us-west-2"]\n  }\n}\n')
        lb_env = dict(os.environ, AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET,
                      AWS_EC2_METADATA_DISABLED="true", LIFEBOAT_AWS_MAX_ATTEMPTS="1")

        def lifeboat(*args):
            t = time.monotonic()
            out = subprocess.run([binary, *args], cwd=ws, env=lb_env, capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit(f"lifeboat {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
            return time.monotonic() - t, out.stdout

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
            post(endpoint + "/moto-api/recorder/reset-recording")
            post(endpoint + "/moto-api/recorder/start-recording")
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
            post(endpoint + "/moto-api/recorder/stop-recording")
            return elapsed, actions(recording)

        t_before, base_calls = baseline("baseline-before")
        clear()
        post(endpoint + "/moto-api/recorder/reset-recording")
        post(endpoint + "/moto-api/recorder/start-recording")
        t_run, out = lifeboat("--now", "2026-11-22T10:05:00Z", "backup", "bench", "--dr-concurrency", "20")
        post(endpoint + "/moto-api/recorder/stop-recording")
        calls = actions(recording)
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
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
