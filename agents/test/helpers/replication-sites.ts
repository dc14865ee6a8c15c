import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { dataDirPaths } from '../../src/data-dir.ts';
import { inertFaults, type ReplicationFaults } from '../../src/replication/faults.ts';
import { startReplication, type ReplicationRuntime } from '../../src/replication/runtime.ts';
import { StorageEngine } from '../../src/storage/engine.ts';
import { initDataDir } from '../../src/storage/init.ts';
import { initTls, loadServerTls } from '../../src/tls/files.ts';
import { FaultProxy } from './fault-proxy.ts';

/**
 * Two sites in one test process: real engines, real peer-link listeners
 * over mutual TLS on loopback, with a fault proxy on the H1 -> H2 link.
 * (Process-level tests use real agent processes; this keeps the
 * replication logic's tests fast.)
 */
export interface Site {
  name: string;
  dir: string;
  engine: StorageEngine;
  replication: ReplicationRuntime;
  /** Faults injected into this site's replication (see src/replication/faults.ts). */
  faults: ReplicationFaults;
}

export interface TwoSites {
  h1: Site;
  h2: Site;
  /** Sits between h1's link client and h2's link listener. */
  proxy: FaultProxy;
  close(): Promise<void>;
}

/** One site (engine and replication runtime) in a data dir under `root`, paired with nobody. */
export async function startSite(name: string, root: string): Promise<Site> {
  const dir = path.join(root, name);
  const identity = await initDataDir(dir, { site: name, trackSize: 65536 });
  await initTls(dir, identity);
  const engine = await StorageEngine.open(dir);
  const tls = await loadServerTls(dir);
  // Faults the test injects (set a field when it wants one).
  const faults = inertFaults();
  const replication = await startReplication({
    engine,
    identity,
    tlsDir: dataDirPaths(dir).tls,
    authority: tls.authority,
    serverTls: tls,
    apiAddress: () => '127.0.0.1:1',
    link: { host: '127.0.0.1', port: 0 },
    logger: pino({ level: process.env.TANDEM_TEST_LOG ?? 'silent' }),
    faults,
  });
  return { name, dir, engine, replication, faults };
}

/** Two paired sites; h1 reaches h2 through the proxy. */
export async function startTwoSites(): Promise<TwoSites> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'tandem-sites-'));
  const [h1, h2] = await Promise.all([startSite('alpha', root), startSite('beta', root)]);
  const [host, port] = h2.replication.linkAddress.split(':');
  const proxy = await FaultProxy.start({ host, port: Number(port) });
  const caOf = async (site: Site) => (await loadServerTls(site.dir)).authority.certificatePem;
  h1.replication.peers.add({
    agentId: h2.engine.identity.agentId,
    site: 'beta',
    caPem: await caOf(h2),
    linkAddress: proxy.address,
    apiAddress: null,
  });
  h2.replication.peers.add({
    agentId: h1.engine.identity.agentId,
    site: 'alpha',
    caPem: await caOf(h1),
    linkAddress: h1.replication.linkAddress,
    apiAddress: null,
  });
  return {
    h1,
    h2,
    proxy,
    async close() {
      for (const site of [h1, h2]) {
        await site.replication.close();
        await site.engine.close();
      }
      await proxy.close();
      await fs.rm(root, { recursive: true, force: true });
    },
  };
}

/** Polls until `check` returns true (or throws after the timeout). */
export async function waitFor(check: () => boolean, timeoutMs = 20_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export async function readAll(site: Site, volume: string): Promise<Buffer> {
  const device = site.engine.device(volume);
  const data = Buffer.alloc(device.sizeBytes);
  await device.readInto(0, data);
  return data;
}
