#!/usr/bin/env bash
# Makes a fresh clone on a fresh Debian 12 machine (Node 20) ready to run:
# the system packages the agents' tests and the e2e browser need, the npm
# dependencies (without the Electron binary download, which is blocked in
# some places; see ENVIRONMENT notes in README), and the console build.
# Safe to run again: each step is skipped when already done.
#
#   scripts/setup.sh            everything
#   scripts/setup.sh --no-apt   skip system packages (you installed them)
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(qemu-utils libnbd-bin nbdkit fio chromium python3 make g++ openssl rsync prometheus systemd)  # rsync: the anchor of bench:mirror's resync section; prometheus: promtool and a real scraper for the metrics tests; systemd: systemd-analyze verify for the agent's unit

missing=()
if [[ "${1:-}" != "--no-apt" ]]; then
  for package in "${apt_packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
fi
if ((${#missing[@]} > 0)); then
  echo "setup: installing ${missing[*]} (apt)"
  sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "setup: need root or sudo to apt-get install ${missing[*]}" >&2; exit 1; }
    sudo_cmd=(sudo)
  fi
  "${sudo_cmd[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
if ((node_major < 20)); then
  echo "setup: Node 20 or newer is needed (found $(node --version))" >&2
  exit 1
fi

# npm ci when node_modules is missing or older than the lockfile.
if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "setup: installing npm dependencies (npm ci)"
  ELECTRON_SKIP_BINARY_DOWNLOAD=1 npm ci --no-audit --no-fund
fi

# The agent's small native addon (agents/native: reads that never wait for the
# disk; sd_notify for the systemd unit). Optional: without it the agent reads through the thread pool, so a
# failed build only warns. Node's own headers are used when they are
# installed beside it (no download).
native=agents/native
native_out="$native/build/Release/tandem_nowait_io.node"
if [[ ! -f "$native_out" || "$native/nowait-io.c" -nt "$native_out" || "$native/sd-notify.c" -nt "$native_out" || "$native/binding.gyp" -nt "$native_out" ]]; then
  echo "setup: building the agent's native addon (node-gyp)"
  node_prefix=$(dirname "$(dirname "$(command -v node)")")
  nodedir_arg=()
  [[ -f "$node_prefix/include/node/node_api.h" ]] && nodedir_arg=(--nodedir="$node_prefix")
  if ! npx --no-install node-gyp rebuild --directory="$PWD/$native" "${nodedir_arg[@]}" >"$native/build.log" 2>&1; then
    echo "setup: warning: the native addon did not build (see $native/build.log); the agent falls back to thread-pool reads and unchunked writes, and cannot run under systemd Type=notify" >&2
  fi
fi

# The agent as JavaScript (agents/dist; bin/tandem-agent.cjs runs it while it
# is newer than the sources, the sources through tsx otherwise). A second or two.
echo "setup: building the agent (npm run build:agent)"
node agents/scripts/build.mjs

echo "setup: building the console (electron-vite build)"
npx --no-install electron-vite build >/dev/null
echo "setup: ready"
