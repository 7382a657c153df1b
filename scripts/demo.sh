#!/usr/bin/env bash
# The demo: Lifeboat's main job, start to finish, against a local AWS
# emulator. Nothing touches a real AWS account.
#
# It installs the emulator into .venv/, builds lifeboat, starts the emulator
# on a free loopback port, creates three instances with two volumes each, and
# then walks through validate, plan, apply, three backups, a retention change
# previewed by plan, and the removal of a terminated instance.
#
# Usage: scripts/demo.sh [--keep]   (--keep leaves the working directory behind)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lifeboat-target}"
keep=false
[ "${1:-}" = "--keep" ] && keep=true

bold=""
plain=""
if [ -t 1 ]; then
  bold=$'\033[1m'
  plain=$'\033[0m'
fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"; }
say() { printf '    %s\n' "$*"; }

step "Installing the AWS emulator into .venv/ (first time only)"
bash "$root/scripts/emulator-env.sh"
py="$root/.venv/bin/python"

step "Building lifeboat (cargo build; the first build takes several minutes)"
(cd "$root" && cargo build)
lifeboat_bin="$CARGO_TARGET_DIR/debug/lifeboat"

work="$(mktemp -d "${TMPDIR:-/tmp}/lifeboat-demo.XXXXXX")"
port="$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
endpoint="http://127.0.0.1:$port"

step "Starting the AWS emulator on $endpoint"
MOTO_EC2_LOAD_DEFAULT_AMIS=false "$root/.venv/bin/moto_server" -H 127.0.0.1 -p "$port" \
  >"$work/emulator.log" 2>&1 &
emulator_pid=$!
cleanup() {
  kill "$emulator_pid" 2>/dev/null || true
  wait "$emulator_pid" 2>/dev/null || true
  if $keep; then
    echo "Working directory kept: $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
"$py" - "$port" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
deadline = time.time() + 20
while True:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        break
    except OSError:
        if time.time() > deadline:
            sys.exit("the emulator did not start; see its log")
        time.sleep(0.1)
PY

# The emulator accepts any credentials; these are not secrets.
export AWS_ENDPOINT_URL="$endpoint"
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_EC2_METADATA_DISABLED=true
export LIFEBOAT_AWS_MAX_ATTEMPTS=1
unset AWS_PROFILE AWS_SESSION_TOKEN

# fixture ACTION ...: the AWS side of the demo (what an operator would have
# already), done with the boto3 that comes with the emulator.
fixture() {
  "$py" - "$@" <<'PY'
import os, sys
import boto3
ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
action, args = sys.argv[1], sys.argv[2:]
if action == "create":
    ids = []
    for tags in ([("team", "web"), ("Name", "web-1")], [("team", "web"), ("Name", "web-2")], [("Name", "billing")]):
        r = ec2.run_instances(
            ImageId="ami-12345678", InstanceType="t3.micro", MinCount=1, MaxCount=1,
            BlockDeviceMappings=[
                {"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 8}},
                {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 20}},
            ],
            TagSpecifications=[{"ResourceType": "instance",
                                "Tags": [{"Key": k, "Value": v} for k, v in tags]}],
        )
        ids.append(r["Instances"][0]["InstanceId"])
    print(" ".join(ids))
elif action == "terminate":
    ec2.terminate_instances(InstanceIds=args)
elif action == "snapshots":
    snaps = ec2.describe_snapshots(Filters=[{"Name": "tag-key", "Values": ["lifeboat:policy"]}])["Snapshots"]
    print(len(snaps))
PY
}

# lb ARGS: runs lifeboat in the working directory, showing the command.
lb() {
  printf '%s$ lifeboat %s%s\n' "$bold" "$*" "$plain"
  (cd "$work/config" && "$lifeboat_bin" "$@")
}

step "Creating three instances in us-east-1, two volumes each (two tagged team=web)"
ids="$(fixture create)"
read -r web1 web2 billing <<<"$ids"
say "web-1   $web1  (team=web)"
say "web-2   $web2  (team=web)"
say "billing $billing  (no tag; named in the configuration instead)"

step "Writing the quickstart configuration into $work/config"
mkdir -p "$work/config"
sed "s/i-0123456789abcdef0/$billing/" "$root/examples/quickstart/main.lb.hcl" >"$work/config/main.lb.hcl"
sed 's/^/    /' "$work/config/main.lb.hcl"

step "Checking the configuration"
lb validate

step "Planning: what Lifeboat would do, before it does anything"
lb plan

step "Applying: the account, the policy and its three targets go into state"
lb apply --auto-approve

step "Taking three backups, an hour apart (policy web keeps 2 generations)"
for hour in 10 11 12; do
  lb --now "2026-11-22T$hour:00:00Z" backup web
done
say "The third backup pushed the first one beyond 2 generations: its snapshots are gone."

step "The backup catalog"
lb backups
say "Snapshots Lifeboat holds in the emulator: $(fixture snapshots)"

step "Lowering generations from 2 to 1 in main.lb.hcl"
sed -i.bak 's/generations = 2/generations = 1/' "$work/config/main.lb.hcl"
rm -f "$work/config/main.lb.hcl.bak"
grep -n 'generations' "$work/config/main.lb.hcl" | sed 's/^/    /'

step "Planning the retention change: exactly which snapshots will be deleted, and why"
lb plan

step "Applying it"
lb apply --auto-approve

step "The catalog now holds one generation"
lb backups
say "Snapshots Lifeboat holds in the emulator: $(fixture snapshots)"

step "Terminating web-2 ($web2)"
fixture terminate "$web2"

step "Planning: the terminated instance leaves the policy (auto_remove_targets = \"yes\")"
lb plan

step "Applying it"
lb apply --auto-approve

step "Planning once more: nothing left to do"
set +e
lb plan --detailed-exitcode
code=$?
set -e
say "plan --detailed-exitcode exited $code (0: no changes, 2: changes, 1: error)"
if [ "$code" -ne 0 ]; then
  echo "demo: expected no changes" >&2
  exit 1
fi

step "Rehearsing half a day of scheduled work: the runner jumps from one slot to the next"
lb --now 2026-11-23T00:00:00Z run --fast-forward --until 2026-11-23T12:00:00Z

step "Per policy: the last backup, its status, the next run and open alerts"
lb --now 2026-11-23T12:00:00Z status

step "Done"
say "Everything above ran against the emulator on $endpoint, which stops now."
