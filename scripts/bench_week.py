"""Benchmark (not a test): the runner's memory over a simulated week.
`lifeboat run --fast-forward` from 2026-11-22T00:00Z until DAYS days later,
with a daily schedule over TARGETS instance targets (1 volume each) and
`generations = 5`, against the AWS emulator: every day a backup of every
target, and from the sixth its retention deletes.

Reports the runner's peak resident memory (GNU time's "Maximum resident set
size"), its wall time and the API calls by action. Run through
scripts/bench.sh.

usage: bench_week.py LIFEBOAT_BINARY [TARGETS] [DAYS] [--backend sqlite|dynamodb]
"""

import datetime
import os

from benchlib import DYNAMODB_STATE, Emulator, arguments, backend_option

START = datetime.datetime(2026, 11, 22, tzinfo=datetime.timezone.utc)


def main():
    backend = backend_option()
    binary, targets, days = arguments(__doc__, [1000, 7])
    with Emulator("lifeboat-week-") as emu:
        ec2 = emu.client("ec2")
        made = 0
        while made < targets:
            n = min(500, targets - made)
            ec2.run_instances(ImageId="ami-12345678", MinCount=n, MaxCount=n, InstanceType="t3.micro",
                              TagSpecifications=[{"ResourceType": "instance",
                                                  "Tags": [{"Key": "bench", "Value": "yes"}]}])
            made += n
        ws = emu.workspace((DYNAMODB_STATE if backend == "dynamodb" else "")
                           + 'account "main" {\n  regions = ["us-east-1"]\n}\n\n'
                           'schedule "daily" {\n  start = "2026-11-22T01:00"\n  every = "24h"\n}\n\n'
                           'policy "bench" {\n  account     = account.main\n  generations = 5\n'
                           '  schedules   = [schedule.daily]\n\n  select {\n    tag   = "bench"\n'
                           '    value = "yes"\n  }\n}\n')
        lifeboat = emu.lifeboat(binary, ws)
        if backend == "dynamodb":
            lifeboat("state", "init")
        lifeboat("apply", "--auto-approve")

        # GNU time runs the runner and writes its figures to a file.
        timed = emu.lifeboat("/usr/bin/time", ws)
        figures = os.path.join(emu.work, "time.txt")
        until = START + datetime.timedelta(days=days)
        emu.record()
        elapsed, out = timed("-v", "-o", figures, binary, "--now", START.strftime("%Y-%m-%dT%H:%M:%SZ"), "run",
                             "--fast-forward", "--until", until.strftime("%Y-%m-%dT%H:%M:%SZ"),
                             "--log-format", "json")
        calls = emu.recorded()
        with open(figures) as f:
            rss_kib = next(int(line.split(":")[1]) for line in f if "Maximum resident set size" in line)
        finished = [line for line in out.splitlines() if "backup_finish" in line]
        print(f"targets: {targets} instances (1 volume each), daily schedule, generations 5, {days} days; "
              f"state: {backend}")
        print(f"backups finished: {len(finished)}")
        if finished:
            print(f"last: {finished[-1]}")
        print("API calls by action:")
        for action, n in sorted(calls.items()):
            print(f"  {action:<24} {n}")
        print(f"runner wall time:     {elapsed:.1f}s")
        print(f"runner peak RSS:      {rss_kib / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
