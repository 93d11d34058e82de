#!/usr/bin/env bash
# Installs the build dependencies (Debian packages, idempotent), builds townhall in release mode
# and runs it on embedded defaults. Extra arguments go to `townhall serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --build-only
exec cargo run --release --locked -- serve "$@"
