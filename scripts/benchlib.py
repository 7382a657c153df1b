"""What the emulator benchmarks (bench_tick.py, bench_dr.py,
bench_recover.py) share: an emulator started with its request recorder, the
calls counted by action, and `lifeboat` run against it in a workspace of its
own. Not a benchmark itself.
"""

import base64
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
        # JSON protocols (DynamoDB) name the action in a header, e.g.
        # `X-Amz-Target: DynamoDB_20120810.TransactWriteItems`.
        target = {k.lower(): v for k, v in (entry.get("headers") or {}).items()}.get("x-amz-target")
        if target:
            counts[target.rsplit(".", 1)[-1]] += 1
            continue
        body = entry.get("body") or ""
        if entry.get("body_encoded"):
            body = base64.b64decode(body).decode("utf-8", "replace")
        params = urllib.parse.parse_qs(body)
        if not params.get("Action"):
            params = urllib.parse.parse_qs(urllib.parse.urlparse(entry.get("uri", "")).query)
        counts[params.get("Action", ["(other)"])[0]] += 1
    return counts


def arguments(doc, defaults):
    """The benchmark's arguments: the binary, then integers with defaults;
    `-h`/`--help` (or no binary) prints the module's doc and exits."""
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help"):
        print(doc.strip())
        sys.exit(0 if args else 2)
    numbers = [int(a) for a in args[1:]] + list(defaults[len(args) - 1:])
    return [args[0], *numbers]


class Emulator:
    """A moto server on a free port recording every request, in a fresh
    work directory; stopped when the `with` block ends."""

    def __init__(self, prefix):
        self.work = tempfile.mkdtemp(prefix=prefix)
        self.recording = os.path.join(self.work, "recording.jsonl")
        port = free_port()
        self.endpoint = f"http://127.0.0.1:{port}"
        env = dict(os.environ, MOTO_EC2_LOAD_DEFAULT_AMIS="false", MOTO_ENABLE_RECORDING="true",
                   MOTO_RECORDER_FILEPATH=self.recording)
        self.server = subprocess.Popen(
            [os.path.join(ROOT, ".venv/bin/moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def __enter__(self):
        for _ in range(100):
            try:
                urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=1)
                break
            except Exception:
                time.sleep(0.2)
        return self

    def __exit__(self, *_):
        self.server.terminate()
        self.server.wait()

    def client(self, service, region=REGION):
        return boto3.client(service, region_name=region, endpoint_url=self.endpoint,
                            aws_access_key_id=KEY, aws_secret_access_key=SECRET)

    def record(self):
        """Starts counting requests afresh."""
        post(self.endpoint + "/moto-api/recorder/reset-recording")
        post(self.endpoint + "/moto-api/recorder/start-recording")

    def recorded(self):
        """Stops counting; the requests since `record`, by action."""
        post(self.endpoint + "/moto-api/recorder/stop-recording")
        return actions(self.recording)

    def workspace(self, config):
        """A configuration directory holding `config` as main.lb.hcl."""
        ws = os.path.join(self.work, "ws")
        os.makedirs(ws)
        with open(os.path.join(ws, "main.lb.hcl"), "w") as f:
            f.write(config)
        return ws

    def lifeboat(self, binary, ws, **extra_env):
        """A function running `binary ARGS` in `ws` against this emulator,
        returning (wall seconds, stdout); a failure ends the benchmark."""
        env = dict(os.environ, AWS_ENDPOINT_URL=self.endpoint, AWS_ACCESS_KEY_ID=KEY,
                   AWS_SECRET_ACCESS_KEY=SECRET, AWS_EC2_METADATA_DISABLED="true",
                   LIFEBOAT_AWS_MAX_ATTEMPTS="1", **extra_env)

        def run(*args):
            t = time.monotonic()
            out = subprocess.run([binary, *args], cwd=ws, env=env, capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit(f"lifeboat {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
            return time.monotonic() - t, out.stdout

        return run


DYNAMODB_STATE = ('lifeboat {\n  state {\n    backend   = "dynamodb"\n    table     = "lifeboat-state"\n'
                  '    region    = "us-east-1"\n    workspace = "bench"\n  }\n}\n\n')


def backend_option():
    """Takes `--backend sqlite|dynamodb` out of the arguments (sqlite by
    default): the second keeps the state in a DynamoDB table of the emulator,
    configured by DYNAMODB_STATE and made by `lifeboat state init`."""
    args = sys.argv
    if "--backend" not in args:
        return "sqlite"
    at = args.index("--backend")
    name = args[at + 1] if at + 1 < len(args) else ""
    if name not in ("sqlite", "dynamodb"):
        sys.exit("--backend is sqlite or dynamodb")
    del args[at:at + 2]
    return name
