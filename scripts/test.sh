#!/usr/bin/env bash
# Installs what the tests need (scripts/setup.sh: apt, Python venv, npm), then builds the
# workspace once (release profile) and runs every test: unit tests and the end-to-end
# scenarios under tests/, which drive the real binary with Chromium, ffmpeg 9 and aiortc.
#
# CARGO_TARGET_DIR defaults to ~/.cache/townhall-target so repeated runs (and CI on the same
# machine) reuse the build. End-to-end tests run one at a time: each one starts real media
# clients, and a 2-core machine is loaded enough by one.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/townhall-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
cargo build --release --workspace --all-targets --locked
cargo test --release --workspace --locked -- --test-threads=1 "$@"
