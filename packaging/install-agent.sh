#!/usr/bin/env bash
# Puts an installed tandem-agent package under systemd: the `tandem` system
# user, the unit, /etc/default/tandem-agent, the data dir (initialized when
# --site is given). Run as root after installing the package:
#
#   npm install -g --prefix /usr/local ./tandem-agent-VERSION.tgz
#   /usr/local/lib/node_modules/tandem-agent/install-agent.sh --site alpha
#   systemctl enable --now tandem-agent
#
# Options: --site NAME (init the data dir for this site), --no-start-hint.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=/usr/local/bin/tandem-agent
data=/var/lib/tandem-agent
site=""
while (($# > 0)); do
  case "$1" in
    --site) site="${2:?--site needs a name}"; shift 2 ;;
    *) echo "install-agent: error: bad-request: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ $(id -u) -eq 0 ]] || { echo "install-agent: error: access-denied: run as root" >&2; exit 1; }
[[ -x "$bin" ]] || { echo "install-agent: error: not-found: $bin (install the package with npm install -g --prefix /usr/local first)" >&2; exit 1; }
if [[ ! -f "$here/native/build/Release/tandem_nowait_io.node" ]]; then
  echo "install-agent: warning: the native addon is not built ($here/native/build.log): under Type=notify the agent refuses to start without it" >&2
fi

id -u tandem >/dev/null 2>&1 || useradd --system --user-group --home-dir "$data" --no-create-home --shell /usr/sbin/nologin tandem
install -D -m 0644 "$here/systemd/tandem-agent.service" /etc/systemd/system/tandem-agent.service
[[ -f /etc/default/tandem-agent ]] || install -D -m 0644 "$here/systemd/tandem-agent.default" /etc/default/tandem-agent
install -d -m 0700 -o tandem -g tandem "$data"
if [[ -n "$site" && ! -f "$data/agent.json" ]]; then
  runuser -u tandem -- "$bin" init --data "$data" --site "$site"
fi
if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
  systemctl daemon-reload
fi
echo "install-agent: installed /etc/systemd/system/tandem-agent.service; settings in /etc/default/tandem-agent"
[[ -f "$data/agent.json" ]] || echo "install-agent: next: runuser -u tandem -- $bin init --data $data --site NAME"
echo "install-agent: then: systemctl enable --now tandem-agent; systemctl status tandem-agent"
