"""Benchmark (not a test): one `lifeboat run --once` tick with 1,000 due
instance targets against the AWS emulator, next to a minimal script making
the same CreateSnapshots calls on the same emulator in the same run.

Reports the API calls the tick made, by action (from the emulator's request
recorder), the create calls per target, and the wall time of the tick against
the minimal script's. Run through scripts/bench.sh.

usage: bench_tick.py LIFEBOAT_BINARY [TARGETS]
"""

import base64
import concurrent.futures
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections import Counter

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REGION = "us-east-1"
# Fake credentials for the local emulator only.
KEY, SECRET = "testing", "testing"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url):
    urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=30).read()


def actions(path):
    """Counts the recorded requests by their Action parameter."""
    counts = Counter()
    if not os.path.exists(path):
        return counts
    decoder = json.JSONDecoder()
    entries = []
    with open(path) as f:
        # Requests answered at once (the restore points' describes beside
        # the creates) can land on one line: read every value in it.
        for line in f:
            at = 0
            line = line.strip()
            while at < len(line):
                entry, at = decoder.raw_decode(line, at)
                entries.append(entry)
                while at < len(line) and line[at].isspace():
                    at += 1
    for entry in entries:
        body = entry.get("body") or ""
        if entry.get("body_encoded"):
            body = base64.b64decode(body).decode("utf-8", "replace")
        params = urllib.parse.parse_qs(body)
        if not params.get("Action"):
            params = urllib.parse.parse_qs(urllib.parse.urlparse(entry.get("uri", "")).query)
        counts[params.get("Action", ["(other)"])[0]] += 1
    return counts


def main():
    binary = sys.argv[1]
    targets = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    work = tempfile.mkdtemp(prefix="lifeboat-bench-")
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
        ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=endpoint,
                           aws_access_key_id=KEY, aws_secret_access_key=SECRET)
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
                    'schedule "hourly" {\n  start = "2026-11-22T00:00"\n  every = "1h"\n}\n\n'
                    'policy "bench" {\n  account     = account.main\n  generations = 1\n'
                    '  schedules   = [schedule.hourly]\n\n  select {\n    tag   = "bench"\n    value = "yes"\n  }\n}\n')
        lb_env = dict(os.environ, AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET,
                      AWS_EC2_METADATA_DISABLED="true", LIFEBOAT_AWS_MAX_ATTEMPTS="1")

        def lifeboat(*args):
            t = time.monotonic()
            out = subprocess.run([binary, *args], cwd=ws, env=lb_env, capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit(f"lifeboat {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
            return time.monotonic() - t, out.stdout

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
            post(endpoint + "/moto-api/recorder/reset-recording")
            post(endpoint + "/moto-api/recorder/start-recording")
            t = time.monotonic()
            with concurrent.futures.ThreadPoolExecutor(16) as pool:
                list(pool.map(lambda i: snap(i, label), ids))
            elapsed = time.monotonic() - t
            post(endpoint + "/moto-api/recorder/stop-recording")
            return elapsed, actions(recording)

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

        post(endpoint + "/moto-api/recorder/reset-recording")
        post(endpoint + "/moto-api/recorder/start-recording")
        t_tick, out = lifeboat("--now", "2026-11-22T10:05:00Z", "run", "--once")
        post(endpoint + "/moto-api/recorder/stop-recording")
        tick_calls = actions(recording)
        finished = [line for line in out.splitlines() if "backup_finish" in line]

        clear()
        t_after, _ = baseline("baseline-after")
        t_base = (t_before + t_after) / 2

        print(f"targets: {targets} instances (1 volume each), one policy, one region")
        print(f"apply (plan + apply of {targets} targets): {t_apply:.2f}s")
        print(f"tick: {finished[0] if finished else out}")
        print("tick API calls by action:")
        for action, n in sorted(tick_calls.items()):
            print(f"  {action:<24} {n}")
        creates = tick_calls.get("CreateSnapshots", 0)
        print(f"create calls per target: {creates / targets:.3f}; "
              f"tagging calls: {tick_calls.get('CreateTags', 0)}; "
              f"other calls per target: {(sum(tick_calls.values()) - creates) / targets:.4f}")
        print(f"tick wall time:            {t_tick:.2f}s (whole process, incl. start-up and waiting for completion)")
        print(f"minimal script wall time:  {t_base:.2f}s (mean of {t_before:.2f}s before and {t_after:.2f}s after; "
              f"{sum(base_calls.values())} calls each)")
        print(f"ratio: {t_tick / t_base:.2f}x")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
