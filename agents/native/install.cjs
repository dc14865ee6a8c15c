'use strict';
// Builds the native addon when the agent is installed from its package
// (npm's install script): node-gyp with Node's own headers when they sit
// beside the node binary (no download), as scripts/setup.sh does in a clone.
// The addon is optional for the agent's I/O (pure-JS fallback) but sends the
// systemd notifications, so a failure warns loudly and does not fail the install.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const prefix = path.dirname(path.dirname(process.execPath));
const args = ['rebuild', `--directory=${__dirname}`];
if (fs.existsSync(path.join(prefix, 'include/node/node_api.h'))) args.push(`--nodedir=${prefix}`);
// npm puts its bundled node-gyp on PATH for install scripts.
const result = spawnSync('node-gyp', args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
if (result.status !== 0) {
  fs.writeFileSync(path.join(__dirname, 'build.log'), `${result.stdout ?? ''}${result.stderr ?? ''}${result.error ?? ''}`);
  console.warn(
    `tandem-agent: warning: the native addon did not build (see ${path.join(__dirname, 'build.log')}): ` +
      'the agent runs, but cannot run under systemd Type=notify until it is built (a C compiler and Node headers)',
  );
}
