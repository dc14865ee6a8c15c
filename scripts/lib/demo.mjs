// The demo's two sites: data dirs, fixed ports (kept in demo.json so the
// console's paired addresses stay valid across runs), a few volumes, and
// what shows the product (seedDemoReplication): the sites paired, a sync and
// an async session running in a cluster with its master data set, and a
// flash copy with background copy. Everything goes through the agents' own
// control API (the CLI), found before it is made, so a second `npm start`
// on the same demo dir adds nothing and fails on nothing.
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { agentCli, freePort, initAgent, pairingToken } from './agents.mjs';

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

/** The names the demo gives what it makes (tests and the README use them too). */
export const demoNames = {
  syncSession: 'db-mirror',
  asyncSession: 'logs-mirror',
  cluster: 'prod',
  flash: 'db-nightly',
  /** [H1 volume at the primary, H2 volume at the secondary, size] per session. */
  syncPair: ['db-data', 'db-data-replica', '10G'],
  asyncPair: ['logs', 'logs-replica', '2G'],
  flashPair: ['db-data', 'db-data-pit', '10G'],
};

/** Polls `probe` (a throw counts as not yet) until it returns something truthy; throws what it last saw after the deadline. */
export async function waitFor(what, probe, timeoutMs = 120_000, everyMs = 250) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const found = await probe();
      if (found) return found;
      last = 'not yet';
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${Math.round(timeoutMs / 1000)} s (last: ${last})`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

const json = async (dataDir, ...args) => JSON.parse(await agentCli([...args, '--json', '--data', dataDir]));

async function ensureVolume(dataDir, name, size, log) {
  const { volumes } = await json(dataDir, 'volume', 'list');
  if (volumes.some((volume) => volume.name === name)) return;
  await agentCli(['volume', 'create', name, size, '--data', dataDir]);
  log(`created volume ${name} (${size})`);
}

async function ensureSession(primaryDir, name, type, peerSite, [h1, h2], log) {
  const { sessions } = await json(primaryDir, 'session', 'list');
  let session = sessions.find((each) => each.name === name);
  if (!session) {
    session = await json(primaryDir, 'session', 'create', name, '--type', type, '--peer', peerSite);
    log(`defined ${type} session ${name}`);
  }
  // Copy sets change while defined, preparing, prepared or suspended (PROTOCOL.md, *Copy sets of running sessions*).
  const takesCopySets = ['defined', 'preparing', 'prepared', 'suspended'].includes(session.state) && session.direction === 'h1-h2';
  if (takesCopySets && !session.pairs.some((pair) => pair.h1Volume === h1)) session = await json(primaryDir, 'session', 'add', name, h1, h2);
  if (session.state === 'defined') {
    await json(primaryDir, 'session', 'start', name);
    log(`started session ${name}: ${h1} -> ${h2}`);
  } else if (session.state === 'suspended' && session.direction === 'h1-h2') {
    // Left suspended by an earlier run (a site stopped first, or a suspend tried in the console): the demo mirrors again.
    await json(primaryDir, 'session', 'resume', name);
    log(`resumed session ${name}`);
  } else if (!['preparing', 'prepared'].includes(session.state) || session.direction !== 'h1-h2') {
    // Failed over or back in an earlier run: the demo does not undo what was done in it.
    log(`session ${name} is ${session.state} (${session.direction}) as an earlier run left it: not waited for; --fresh starts over`);
    return false;
  }
  return true;
}

/**
 * Pairs the demo's agents with each other and makes (or finds) the sync and
 * async sessions, their cluster and the flash copy; resolves once both
 * sessions are prepared (every copy set duplex), within `timeoutMs`. A
 * session an earlier run left suspended is resumed; one failed over or back
 * there is left as it is (and not waited for).
 */
export async function seedDemoReplication({ primary, secondary, log = () => {}, timeoutMs = 180_000 }) {
  const { syncSession, asyncSession, cluster, flash, syncPair, asyncPair, flashPair } = demoNames;
  const secondarySite = demoSites.find((each) => each.key === 'secondary').site;

  const { peers } = await json(primary.dataDir, 'peers', 'list');
  if (!peers.some((peer) => peer.site === secondarySite)) {
    const { token, certificateFingerprint } = await pairingToken(secondary.dataDir);
    await json(primary.dataDir, 'pair', '--with', secondary.apiAddress, '--token', token, '--fingerprint', certificateFingerprint);
    log(`paired agent primary with agent ${secondarySite}`);
  }

  for (const [h1, h2, size] of [syncPair, asyncPair]) {
    await ensureVolume(primary.dataDir, h1, size, log);
    await ensureVolume(secondary.dataDir, h2, size, log);
  }
  const mirroring = [];
  if (await ensureSession(primary.dataDir, syncSession, 'sync', secondarySite, syncPair, log)) mirroring.push(syncSession);
  if (await ensureSession(primary.dataDir, asyncSession, 'async', secondarySite, asyncPair, log)) mirroring.push(asyncSession);

  const { clusters } = await json(primary.dataDir, 'cluster', 'list');
  let group = clusters.find((each) => each.name === cluster);
  if (!group) {
    group = await json(primary.dataDir, 'cluster', 'create', cluster);
    log(`defined cluster ${cluster}; its master data set is kept at the primary`);
  }
  for (const session of [syncSession, asyncSession]) {
    if (!group.members.some((member) => member.session === session)) group = await json(primary.dataDir, 'cluster', 'add', cluster, session);
  }

  await ensureVolume(primary.dataDir, flashPair[1], flashPair[2], log);
  const { sessions: flashes } = await json(primary.dataDir, 'flash', 'list');
  if (!flashes.some((each) => each.name === flash)) {
    // Rate-limited as a production copy would be (the demo's data takes well under a second at it); incremental, so `flash refresh` is quick.
    await json(primary.dataDir, 'flash', 'establish', '--name', flash, '--pair', `${flashPair[0]}:${flashPair[1]}`, '--rate', '64', '--incremental');
    log(`flash copy ${flash}: ${flashPair[0]} -> ${flashPair[1]} with background copy`);
  }

  await waitFor(
    `sessions ${mirroring.join(' and ')} prepared`,
    async () => {
      const { sessions } = await json(primary.dataDir, 'session', 'list');
      return mirroring.every((name) => sessions.find((each) => each.name === name)?.state === 'prepared');
    },
    timeoutMs,
  );
  if (mirroring.length > 0) log(`${mirroring.join(' and ')} ${mirroring.length === 1 ? 'is' : 'are'} mirroring primary -> ${secondarySite}, in cluster ${cluster}`);
}

/** The demo workload's targets: the sessions' primary volumes. */
export function demoWorkloadTargets() {
  return [
    { volume: demoNames.syncPair[0], kind: 'random', regionBytes: 256 * 1024 * 1024 },
    { volume: demoNames.asyncPair[0], kind: 'append', regionBytes: 64 * 1024 * 1024 },
  ];
}
