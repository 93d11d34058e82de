#!/usr/bin/env bash
# Installs everything the build, the tests and the interop scripts need, idempotently, on a fresh
# Debian 12 (as root).
# - Debian: FFmpeg's development libraries, clang and pkg-config (the Opus → AAC transcoder links
#   libavcodec through ffmpeg-next), Chromium (WHIP/WHEP/HLS browser client), ffmpeg (ffprobe),
#   nginx and Varnish (the CDN edges of tests/cdn_edge.rs, which starts and stops its own; no
#   service).
# - Python venv (.venv): aiortc (independent WHIP publisher), imageio-ffmpeg (ffmpeg 9 with the WHIP muxer).
# - npm (node_modules): playwright-core to drive Debian's Chromium (never downloads a browser).
# - cargo: s3s-fs, an S3-compatible server for the S3 push tests.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_PACKAGES=(pkg-config clang libclang-dev libavcodec-dev libavformat-dev libavutil-dev libswresample-dev)
TEST_PACKAGES=(chromium ffmpeg fonts-dejavu-core python3-venv curl ca-certificates nginx varnish)
if [ "${1:-}" = "--build-only" ]; then
  APT_PACKAGES=("${BUILD_PACKAGES[@]}")
else
  APT_PACKAGES=("${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}")
fi
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm: use the machine's if present (it may come from another repository than Debian's).
if ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi
if ((${#missing[@]})); then
  echo "setup: installing apt packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Installing nginx or Varnish would start its system service (port 80/6081) where nothing forbids it; the
  # tests run their own. Forbid service starts for this install, unless a policy exists.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# hls.js is embedded in the binary (the watch page), so the build needs node_modules.
if [ ! -f node_modules/hls.js/dist/hls.min.js ] || [ ! -d node_modules/hls-parser ] || [ ! -d node_modules/playwright-core ]; then
  echo "setup: installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi
if [ "${1:-}" = "--build-only" ]; then
  exit 0
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import aiortc, imageio_ffmpeg, aiohttp, numpy, icalendar" 2>/dev/null; then
  echo "setup: installing Python packages into .venv"
  .venv/bin/pip install -q --disable-pip-version-check -r scripts/requirements.txt
fi

# s3s-fs: the S3-compatible server of tests/s3.rs (real S3 REST API over a directory, with
# SigV4 signature checks). Built from crates.io once (about 3 minutes on 2 cores) into
# ~/.cache/townhall-tools, outside the clone.
TOOLS="${HOME}/.cache/townhall-tools"
if [ ! -x "${TOOLS}/bin/s3s-fs" ]; then
  echo "setup: installing s3s-fs 0.14.1 (cargo install)"
  cargo install s3s-fs@0.14.1 --locked --features binary --root "${TOOLS}" --quiet
fi

echo "setup: ok"
