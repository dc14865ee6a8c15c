import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadServerTls } from '../../src/tls/files.ts';
import { FaultProxy } from './fault-proxy.ts';
import { startSite, waitFor, type Site } from './replication-sites.ts';

/**
 * Three sites in one test process, every pair of them paired (mutual TLS on
 * loopback): alpha (the control agent, a primary agent), bravo (another primary
 * agent) and charlie (the secondary). Every link to and from bravo goes
 * through a fault proxy, so a test can take bravo away; the links between
 * alpha and charlie go through proxies too, which only count bytes.
 */
export interface ThreeSites {
  alpha: Site;
  bravo: Site;
  charlie: Site;
  /** Proxies on every link bravo dials or is dialled on. */
  bravoProxies: FaultProxy[];
  /** Proxies on the links between alpha and charlie (counting bytes only: no test cuts them). */
  alphaCharlieProxies: FaultProxy[];
  /** Cuts (or restores) every link of bravo: nothing passes, connections hang. */
  isolateBravo(on: boolean): void;
  /** Cuts (or restores) only the links between alpha (the control agent) and bravo; bravo still reaches charlie. */
  cutControlAgentBravo(on: boolean): void;
  close(): Promise<void>;
}

/**
 * How many primary agents a scenario runs with: its second copy set's primary
 * volume at bravo (2) or beside the first at alpha, the control agent (1).
 * Scenarios that test the same thing for single- and multi-primary sessions
 * run once with each.
 */
export type Primaries = 1 | 2;

/** The site holding the second copy set's primary volume. */
export const secondPrimary = (s: ThreeSites, primaries: Primaries): Site => (primaries === 2 ? s.bravo : s.alpha);

/** `addPair` options placing the second copy set at its primary agent. */
export const secondPlacement = (primaries: Primaries): { primaryAgent?: string } => (primaries === 2 ? { primaryAgent: 'bravo' } : {});

export async function startThreeSites(): Promise<ThreeSites> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'tandem-mp-sites-'));
  const [alpha, bravo, charlie] = await Promise.all([startSite('alpha', root), startSite('bravo', root), startSite('charlie', root)]);
  const proxies: FaultProxy[] = [];
  const alphaCharlieProxies: FaultProxy[] = [];
  const proxied = async (to: Site, list: FaultProxy[]) => {
    const [host, port] = to.replication.linkAddress.split(':');
    const proxy = await FaultProxy.start({ host, port: Number(port) });
    list.push(proxy);
    return proxy.address;
  };
  const pair = async (from: Site, to: Site, proxiesOfLink: FaultProxy[]) => {
    from.replication.peers.add({
      agentId: to.engine.identity.agentId,
      site: to.name,
      caPem: (await loadServerTls(to.dir)).authority.certificatePem,
      linkAddress: await proxied(to, proxiesOfLink),
      apiAddress: null,
    });
  };
  await pair(alpha, charlie, alphaCharlieProxies);
  await pair(charlie, alpha, alphaCharlieProxies);
  await pair(alpha, bravo, proxies);
  await pair(bravo, alpha, proxies);
  await pair(bravo, charlie, proxies);
  await pair(charlie, bravo, proxies);
  return {
    alpha,
    bravo,
    charlie,
    bravoProxies: proxies,
    alphaCharlieProxies,
    isolateBravo(on) {
      for (const proxy of proxies) {
        proxy.blackhole(on);
        if (on) proxy.resetAll();
      }
    },
    cutControlAgentBravo(on) {
      // The first two proxies carry alpha -> bravo and bravo -> alpha.
      for (const proxy of proxies.slice(0, 2)) {
        proxy.blackhole(on);
        if (on) proxy.resetAll();
      }
    },
    async close() {
      for (const site of [alpha, bravo, charlie]) {
        await site.replication.close();
        await site.engine.close();
      }
      for (const proxy of [...proxies, ...alphaCharlieProxies]) await proxy.close();
      await fs.rm(root, { recursive: true, force: true });
    },
  };
}

const MiB = 1024 * 1024;

/**
 * An async session `mp` (alpha: a; b at bravo with two primary agents, at alpha
 * with one; both 16 MiB with 1 MiB of data, mirrored to charlie: a2, b2),
 * started and Prepared.
 */
export async function preparedMultiPrimary(s: ThreeSites, primaries: Primaries = 2): Promise<void> {
  const holder = secondPrimary(s, primaries);
  await s.alpha.engine.createVolume('a', 16 * MiB);
  await holder.engine.createVolume('b', 16 * MiB);
  for (const name of ['a2', 'b2']) await s.charlie.engine.createVolume(name, 16 * MiB);
  await s.alpha.replication.exports.openExport('a').write(4 * MiB, randomBytes(MiB));
  await holder.replication.exports.openExport('b').write(6 * MiB, randomBytes(MiB));
  const controlAgent = s.alpha.replication.service;
  await controlAgent.createSession('mp', 'async', 'charlie');
  await controlAgent.addPair('mp', 'a', 'a2');
  await controlAgent.addPair('mp', 'b', 'b2', secondPlacement(primaries));
  await controlAgent.act('mp', 'start');
  await waitFor(() => controlAgent.session('mp').state === 'prepared', 60_000, 'prepared');
}

/** `preparedMultiPrimary`, then failed over to charlie (1 MiB written to b2 there) and failed back: charlie mirrors H2->H1. */
export async function failedBackMultiPrimary(s: ThreeSites, primaries: Primaries = 2): Promise<void> {
  await preparedMultiPrimary(s, primaries);
  const charlie = s.charlie.replication.service;
  await charlie.act('mp', 'recover');
  await s.charlie.replication.exports.openExport('b2').write(MiB, randomBytes(MiB));
  await charlie.act('mp', 'failback');
  await waitFor(() => charlie.session('mp').state === 'prepared', 60_000, 'prepared H2->H1');
}
