#!/usr/bin/env bash
# Installs the AWS emulator (moto's server) and cfn-lint into .venv/ inside the
# repository, nothing global. Idempotent: once installed, a second call only
# checks that the server is still there.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
marker="$venv/.lifeboat-emulator-1"
if [ -f "$marker" ] && [ -x "$venv/bin/moto_server" ]; then
  exit 0
fi
python="${PYTHON:-python3}"
if ! command -v "$python" >/dev/null 2>&1; then
  echo "emulator-env: $python not found; install Python 3.9 or newer (with venv) and retry" >&2
  exit 1
fi
echo "emulator-env: installing moto[server] and cfn-lint into $venv"
if [ ! -x "$venv/bin/pip" ]; then
  rm -rf "$venv"
  if ! "$python" -m venv "$venv"; then
    echo "emulator-env: '$python -m venv' failed; on Debian/Ubuntu install the python3-venv package" >&2
    exit 1
  fi
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]==5.2.5' 'cfn-lint>=1'
touch "$marker"
