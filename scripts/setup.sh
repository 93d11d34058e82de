#!/usr/bin/env bash
# Installs everything the tests and interop scripts need, idempotently, on a fresh Debian 12 (as root).
# - Debian: Chromium (WHIP/WHEP browser client), build tools.
# - Python venv (.venv): aiortc (independent WHIP publisher), imageio-ffmpeg (ffmpeg 9 with the WHIP muxer).
# - npm (node_modules): playwright-core to drive Debian's Chromium (never downloads a browser).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(chromium ffmpeg fonts-dejavu-core python3-venv pkg-config curl ca-certificates)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing apt packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import aiortc, imageio_ffmpeg, aiohttp, numpy" 2>/dev/null; then
  echo "setup: installing Python packages into .venv"
  .venv/bin/pip install -q --disable-pip-version-check -r scripts/requirements.txt
fi

if [ ! -d node_modules/playwright-core ]; then
  echo "setup: installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi
echo "setup: ok"
