#!/usr/bin/env node
// `npm start`: two demo agents (primary and secondary) in an embedded data
// dir, the console backend, both sites paired with it; then the Electron app
// when its binary exists, otherwise the console in a browser at the printed
// address. Ctrl-C stops everything this started.
//
// Besides the volumes the demo shows the product: the agents paired, a sync
// session (db-mirror) and an async session (logs-mirror) mirroring primary ->
// secondary in a cluster (prod) with its master data set, a flash copy with
// background copy (db-nightly), and a gentle workload writing a few hundred
// KiB/s through NBD to the sessions' primary volumes so exposure, charts and
// track maps move. A second run on the same demo dir finds all this and makes
// nothing twice.
//
//   npm start                     data in .tandem-demo/ of the repo
//   npm start -- --data DIR       another demo dir
//   npm start -- --fresh          wipe the demo dir first
//   npm start -- --browser        browser mode even where Electron exists
//   npm start -- --port 8080      fixed port for the console (browser mode)
//   npm start -- --quiet          no workload (the sessions and the flash copy are still made)
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pairingToken, repoRoot, startAgent } from './lib/agents.mjs';
import { consoleApi, startConsoleBackend } from './lib/backend.mjs';
import { buildIfStale } from './lib/build.mjs';
import { demoPorts, demoSites, demoWorkloadTargets, initDemoAgents, seedDemoReplication, seedDemoVolumes } from './lib/demo.mjs';
import { startWorkload } from './lib/workload.mjs';

const usage = `usage: npm start [-- OPTIONS]
  --data DIR    the demo dir (default: .tandem-demo/ in the repo, or TANDEM_DEMO_DIR)
  --fresh       wipe the demo dir first
  --browser     the console in a browser even where Electron exists
  --port PORT   a fixed port for the console (browser mode)
  --quiet       no workload (the sessions and the flash copy are still made)
  --help        this text`;

let values;
try {
  ({ values } = parseArgs({
    options: {
      data: { type: 'string' },
      fresh: { type: 'boolean', default: false },
      browser: { type: 'boolean', default: false },
      port: { type: 'string' },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  }));
} catch (error) {
  console.error(`error: bad-request: ${error.message}\n${usage}`);
  process.exit(2);
}
if (values.help) {
  console.log(usage);
  process.exit(0);
}
if (values.port !== undefined && !(/^\d+$/.test(values.port) && Number(values.port) >= 1 && Number(values.port) <= 65535)) {
  console.error(`error: bad-request: --port needs a port number 1..65535, not "${values.port}"`);
  process.exit(2);
}
const demoDir = path.resolve(values.data ?? process.env.TANDEM_DEMO_DIR ?? path.join(repoRoot, '.tandem-demo'));
const configDir = path.join(demoDir, 'console');
const log = (message) => console.log(`[tandem] ${message}`);

const running = [];
let stopping = false;
async function stopAll(code) {
  if (stopping) return;
  stopping = true;
  log('stopping…');
  for (const item of running.reverse()) await item.stop().catch(() => undefined);
  process.exit(code);
}
process.on('SIGINT', () => void stopAll(0));
process.on('SIGTERM', () => void stopAll(0));

function electronBinary() {
  try {
    // The electron package exports the binary's path, and throws when the binary was never downloaded.
    const binary = createRequire(import.meta.url)('electron');
    return typeof binary === 'string' ? binary : null;
  } catch {
    return null;
  }
}

async function main() {
  if (values.fresh) await rm(demoDir, { recursive: true, force: true });
  await buildIfStale(log);
  const ports = await demoPorts(demoDir);
  const created = await initDemoAgents(demoDir);

  const agents = {};
  for (const { key } of demoSites) {
    const dataDir = path.join(demoDir, key);
    const agent = await startAgent({ dataDir, apiPort: ports[key].api, nbdPort: ports[key].nbd, linkPort: ports[key].link });
    running.push(agent);
    agents[key] = agent;
    void agent.exited.then(({ code, signal }) => {
      if (!stopping) log(`agent ${key} exited (${code ?? signal}); see its data dir ${dataDir}`);
    });
    log(`agent ${key}: api ${agent.apiAddress}, nbd nbd://${agent.nbdAddress}/VOLUME, data ${dataDir}`);
    if (created[key]) await seedDemoVolumes(key, dataDir, agent.nbdAddress, log);
  }

  await seedDemoReplication({ primary: agents.primary, secondary: agents.secondary, log });
  if (values.quiet) log('--quiet: no workload');
  else {
    const workload = startWorkload({ nbdAddress: agents.primary.nbdAddress, targets: demoWorkloadTargets(), log });
    // Stopped first, before the agents it writes to.
    running.push(workload);
    log(`workload: a few hundred KiB/s in bursts to ${demoWorkloadTargets().map((target) => target.volume).join(' and ')} through NBD (--quiet for none)`);
  }

  const backend = await startConsoleBackend({ configDir, port: values.port ? Number(values.port) : 0, onLog: (text) => process.stderr.write(text) });
  running.push(backend);
  const { sites } = await consoleApi(backend, 'GET', '/api/sites');
  for (const { key } of demoSites) {
    const agent = agents[key];
    if (sites.some((site) => site.address === agent.apiAddress)) continue;
    const { token, certificateFingerprint } = await pairingToken(agent.dataDir);
    await consoleApi(backend, 'POST', '/api/sites', { address: agent.apiAddress, token, expectedFingerprint: certificateFingerprint });
    log(`paired site ${key} with the console`);
  }

  const electron = values.browser ? null : electronBinary();
  if (electron) {
    // The desktop app runs its own backend in-process on the same registry.
    await backend.stop();
    running.splice(running.indexOf(backend), 1);
    log('opening the desktop app');
    const app = spawn(electron, [repoRoot], { stdio: 'inherit', env: { ...process.env, TANDEM_CONFIG_DIR: configDir } });
    running.push({ stop: async () => void app.kill('SIGTERM') });
    app.on('exit', () => void stopAll(0));
    return;
  }
  console.log('');
  log(values.browser ? 'browser mode' : 'no Electron binary here: serving the console to a browser instead');
  log(`open ${backend.browserUrl}`);
  log('Ctrl-C stops the console and both agents');
}

main().catch((error) => {
  console.error(`[tandem] ${error instanceof Error ? error.message : String(error)}`);
  void stopAll(1);
});
