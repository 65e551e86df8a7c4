#!/usr/bin/env bash
# Installs what the tests of the S3-compatible blob store need when it is missing: moto's S3 server (`moto[server]`
# from PyPI, pinned), in a virtual environment of Debian's python3 under target/moto-venv (tests/common/s3.rs
# starts `target/moto-venv/bin/moto_server` from there). Idempotent: does nothing when the pinned version is there.
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO_VERSION=5.2.5
venv=target/moto-venv
python=/usr/bin/python3
[ -x "$python" ] || python=python3

if [ -x "$venv/bin/moto_server" ] && [ "$("$venv/bin/python" -c 'import moto; print(moto.__version__)' 2>/dev/null)" = "$MOTO_VERSION" ]; then
  exit 0
fi
if ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "the S3 store's tests need python3 with venv: apt-get install python3-venv" >&2
    exit 1
  fi
  echo "installing python3-venv"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
  python=/usr/bin/python3
fi
echo "== installing moto[server] $MOTO_VERSION into $venv"
rm -rf "$venv"
mkdir -p target
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
"$venv/bin/moto_server" --help >/dev/null
