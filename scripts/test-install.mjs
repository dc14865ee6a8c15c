#!/usr/bin/env node
// The documented host install, end to end, in a temp prefix instead of
// /usr/local: packs the agent (scripts/package-agent.mjs), `npm install -g
// --prefix TMP` of the tarball (native dependencies fetched from the
// registry or npm's cache and compiled where no prebuilt binary can be
// downloaded: minutes, hence not in `npm test`), then runs the installed
// `tandem-agent`: --version, init, run under a notify socket until READY=1,
// volume commands, SIGTERM and STOPPING=1; then the production steps of
// scripts/production-check.mjs with the installed agent and the Prometheus
// rules shipped in the tarball (two sites, a real Prometheus, the peer
// killed and back, alerts raised and cleared, the audit export). Exits 0
// when all of it worked; what this machine cannot run is printed as SKIP.
//
//   npm run test:install [-- --keep]
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { packageAgent } from './package-agent.mjs';
import { productionSteps } from './production-check.mjs';

const keep = process.argv.includes('--keep');
const dir = await mkdtemp(path.join(os.tmpdir(), 'tandem-install-'));
const step = (text) => console.log(`test:install: ${text}`);
let agent = null;
let receiver = null;
try {
  const tarball = await packageAgent({ outDir: dir });
  step(`packed ${tarball}`);
  const prefix = path.join(dir, 'prefix');
  const env = { ...process.env };
  // Node's own headers for node-gyp (no download), as scripts/setup.sh does.
  const nodePrefix = path.dirname(path.dirname(process.execPath));
  if (existsSync(path.join(nodePrefix, 'include/node/node_api.h'))) env.npm_config_nodedir = nodePrefix;
  const started = Date.now();
  execFileSync('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', '--prefer-offline', '--foreground-scripts', tarball], { env, stdio: 'inherit', timeout: 20 * 60_000 });
  step(`npm install -g --prefix ${prefix} took ${((Date.now() - started) / 1000).toFixed(0)} s`);
  const bin = path.join(prefix, 'bin/tandem-agent');
  const installed = path.join(prefix, 'lib/node_modules/tandem-agent');
  if (!existsSync(path.join(installed, 'native/build/Release/tandem_nowait_io.node'))) throw new Error('the install script did not build the native addon (native/build.log)');
  const run = (args) => execFileSync(bin, args, { encoding: 'utf8', env: { ...process.env, TANDEM_AGENT_FROM: '' } });
  step(`tandem-agent --version: ${run(['--version']).trim()}`);
  const data = path.join(dir, 'data');
  run(['init', '--data', data, '--site', 'installed']);

  // systemd's side of Type=notify: a Unix datagram socket (python3).
  const socketFile = path.join(dir, 'notify.sock');
  receiver = spawn('python3', ['-c', 'import socket,sys\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\ns.bind(sys.argv[1])\nprint("listening",flush=True)\nwhile True: print(repr(s.recv(65536).decode()),flush=True)', socketFile], { stdio: ['ignore', 'pipe', 'inherit'] });
  let notes = '';
  receiver.stdout.on('data', (chunk) => (notes += chunk));
  const until = async (what, test, ms = 60_000) => {
    const deadline = Date.now() + ms;
    while (!test()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; notify socket got:\n${notes}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  await until('the notify socket', () => notes.includes('listening'));
  agent = spawn(bin, ['run', '--data', data, '--api', '127.0.0.1:0', '--nbd', '127.0.0.1:0', '--link', '127.0.0.1:0'], {
    env: { ...process.env, NOTIFY_SOCKET: socketFile, WATCHDOG_USEC: '2000000', TANDEM_AGENT_FROM: '' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  await until('READY=1', () => notes.includes('READY=1'));
  step('READY=1 received');
  run(['volume', 'create', 'v1', '64M', '--data', data]);
  step(`volume list:\n${run(['volume', 'list', '--data', data])}`);
  await until('WATCHDOG=1', () => notes.includes('WATCHDOG=1'));
  const exited = new Promise((resolve) => agent.once('exit', (code, signal) => resolve({ code, signal })));
  agent.kill('SIGTERM');
  const { code, signal } = await exited;
  agent = null;
  if (code !== 0) throw new Error(`the agent exited ${code ?? signal} on SIGTERM`);
  await until('STOPPING=1', () => notes.includes('STOPPING=1'));
  // The unit, pointed at this install's binary.
  const unit = path.join(dir, 'tandem-agent.service');
  execFileSync('sh', ['-c', `sed "s#/usr/local/bin/tandem-agent#${bin}#" "${path.join(installed, 'systemd/tandem-agent.service')}" > "${unit}"`]);
  const verify = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
  if (verify.error) step('systemd-analyze not found: unit not verified');
  else if (verify.status !== 0 || `${verify.stdout}${verify.stderr}`.includes('tandem-agent')) throw new Error(`systemd-analyze verify: ${verify.stdout}${verify.stderr}`);
  step('installed, ran under the notify protocol, stopped cleanly; the installed unit verifies');
  if (!existsSync('/run/systemd/system')) step('SKIP systemctl: PID 1 is not systemd here, so the unit is verified and its notify protocol run, not started by systemd');
  await productionSteps({ bin, rules: path.join(installed, 'prometheus/tandem-alerts.rules.yml'), dir: path.join(dir, 'production'), step });
  step('ok: installed from the tarball, ready under the notify protocol, scraped by Prometheus, alerts raised and cleared with the peer, audit export names who');
} catch (error) {
  console.error(`test:install: FAILED: ${error.message}`);
  process.exitCode = 1;
} finally {
  agent?.kill('SIGKILL');
  receiver?.kill('SIGKILL');
  if (keep) console.log(`test:install: kept ${dir}`);
  else await rm(dir, { recursive: true, force: true });
}
