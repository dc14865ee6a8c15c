// The demo's two sites: data dirs, fixed ports (kept in demo.json so the
// console's paired addresses stay valid across runs) and a few volumes.
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { agentCli, freePort, initAgent } from './agents.mjs';

const execFileAsync = promisify(execFile);

export const demoSites = [
  { key: 'primary', site: 'primary' },
  { key: 'secondary', site: 'secondary' },
];

/** Ports chosen once per demo dir. */
export async function demoPorts(demoDir) {
  const file = path.join(demoDir, 'demo.json');
  try {
    return JSON.parse(await readFile(file, 'utf8'));
  } catch {
    const ports = {};
    for (const { key } of demoSites) ports[key] = { api: await freePort(), nbd: await freePort(), link: await freePort() };
    await mkdir(demoDir, { recursive: true });
    await writeFile(file, JSON.stringify(ports, null, 2));
    return ports;
  }
}

/** `init` both agents; true for those created just now. */
export async function initDemoAgents(demoDir) {
  const created = {};
  for (const { key, site } of demoSites) created[key] = await initAgent({ dataDir: path.join(demoDir, key), site });
  return created;
}

async function qemuIo(nbdAddress, volume, command) {
  await execFileAsync('qemu-io', ['-f', 'raw', '-c', command, `nbd://${nbdAddress}/${volume}`], { timeout: 60_000 });
}

async function hasQemuIo() {
  try {
    await execFileAsync('qemu-io', ['--version']);
    return true;
  } catch {
    return false;
  }
}

/** A few volumes on a new demo site; on the primary some data and a snapshot, so the track map has something to show. */
export async function seedDemoVolumes(key, dataDir, nbdAddress, log) {
  const cli = (...args) => agentCli([...args, '--data', dataDir]);
  if (key === 'primary') {
    await cli('volume', 'create', 'db-data', '10G');
    await cli('volume', 'create', 'logs', '2G');
    await cli('volume', 'create', 'scratch', '512M');
    if (await hasQemuIo()) {
      await qemuIo(nbdAddress, 'db-data', 'write -P 0x5a 0 8M');
      await qemuIo(nbdAddress, 'db-data', 'write -P 0x11 1G 4M');
      await cli('snapshot', 'create', 'db-data', 'db-data.nightly');
      await qemuIo(nbdAddress, 'db-data', 'write -P 0x6b 0 2M');
      await qemuIo(nbdAddress, 'logs', 'write -P 0x01 0 16M');
    } else {
      log('qemu-io is not installed: demo volumes stay empty (scripts/setup.sh installs it)');
      await cli('snapshot', 'create', 'db-data', 'db-data.nightly');
    }
  } else {
    await cli('volume', 'create', 'db-data-replica', '10G');
    await cli('volume', 'create', 'archive', '20G');
  }
}
