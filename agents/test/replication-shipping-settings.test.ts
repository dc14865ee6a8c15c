import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startPairedAgents, type AgentProcess } from './helpers/agent-process.ts';
import { readAll, startTwoSites, waitFor, type TwoSites } from './helpers/replication-sites.ts';
import { agentCliJson, runCommand } from './helpers/run-command.ts';

const TRACK = 65536;
const MiB = 1024 * 1024;
const HOUR_MS = 60 * 60_000;

let sites: TwoSites | null = null;
afterEach(async () => {
  await sites?.close();
  sites = null;
});

const host = (s: TwoSites, volume: string) => s.h1.replication.exports.openExport(volume);

async function atTarget(s: TwoSites, offset: number, length: number): Promise<Buffer> {
  const data = Buffer.alloc(length);
  await s.h2.engine.device('copy').readInto(offset, data);
  return data;
}

describe('snapshot-shipping settings', () => {
  it('keeps the interval with the session at both sites, changes it on a running session, and ships on request', async () => {
    sites = await startTwoSites();
    const s = sites;
    const h1 = s.h1.replication.service;
    const h2 = s.h2.replication.service;
    await s.h1.engine.createVolume('prod', 8 * MiB);
    await s.h2.engine.createVolume('copy', 8 * MiB);
    await h1.createSession('s1', 'snapshot-shipping', 'beta', { shipIntervalMs: HOUR_MS });
    await h1.addPair('s1', 'prod', 'copy');
    expect(h1.info(h1.session('s1')).shipIntervalSeconds).toBe(3600);
    expect(h2.info(h2.session('s1')).shipIntervalSeconds).toBe(3600);
    // In the catalog, not only in memory.
    for (const service of [h1, h2]) expect(service.store.sessions().find((x) => x.name === 's1')!.shipIntervalMs).toBe(HOUR_MS);

    await h1.act('s1', 'start');
    await waitFor(() => h1.session('s1').state === 'prepared', 30_000, 'first cycle committed');
    const shipper = h1.shippingOf('s1')!;
    const cyclesAtStart = shipper.last!.cycle;

    // Hourly: a write stays at the primary...
    const first = randomBytes(TRACK);
    await host(s, 'prod').write(3 * TRACK, first);
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect((await atTarget(s, 3 * TRACK, TRACK)).equals(first)).toBe(false);
    expect(shipper.last!.cycle).toBe(cyclesAtStart);
    // ...until ship-now (asked at the target site: forwarded to the source), which answers once committed.
    const report = await h2.shipNow('s1');
    expect(report.tracks).toBe(1);
    expect((await atTarget(s, 3 * TRACK, TRACK)).equals(first)).toBe(true);
    expect(h1.info(h1.session('s1')).consistencyTime).toBe(new Date(report.time).toISOString());

    // Changed while running (asked at h2): cycles now come every 0.2 s without asking.
    await h2.setShipInterval('s1', 200);
    for (const service of [h1, h2]) {
      expect(service.info(service.session('s1')).shipIntervalSeconds).toBe(0.2);
      expect(service.store.sessions().find((x) => x.name === 's1')!.shipIntervalMs).toBe(200);
    }
    const second = randomBytes(TRACK);
    await host(s, 'prod').write(5 * TRACK, second);
    await waitFor(() => shipper.last!.cycle >= report.cycle + 3, 20_000, 'cycles at the new interval');
    await waitFor(() => h1.info(h1.session('s1')).pairs[0].outOfSyncTracks === 0, 10_000, 'shipped');
    expect((await atTarget(s, 5 * TRACK, TRACK)).equals(second)).toBe(true);

    // And back to an hour: the cycles stop coming by themselves.
    await h1.setShipInterval('s1', HOUR_MS);
    await new Promise((resolve) => setTimeout(resolve, 300)); // a cycle in progress ends
    const settled = shipper.last!.cycle;
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(shipper.last!.cycle).toBe(settled);
    expect(s.h1.engine.catalog.listEvents(0, 5000).filter((event) => event.type === 'session.settings')).toHaveLength(2);
    expect(s.h2.engine.catalog.listEvents(0, 5000).filter((event) => event.type === 'session.settings')).toHaveLength(2);
    expect((await readAll(s.h1, 'prod')).equals(await readAll(s.h2, 'copy'))).toBe(true);
  }, 90_000);

  it('refuses a shipping interval for other session types', async () => {
    sites = await startTwoSites();
    const h1 = sites.h1.replication.service;
    await expect(h1.createSession('x', 'sync', 'beta', { shipIntervalMs: 1000 })).rejects.toMatchObject({ problem: 'bad-request' });
    expect(() => h1.session('x')).toThrow();
    await h1.createSession('y', 'async', 'beta');
    await expect(h1.setShipInterval('y', 1000)).rejects.toMatchObject({ problem: 'bad-request' });
    await expect(h1.shipNow('y')).rejects.toMatchObject({ problem: 'invalid-state' });
    expect(h1.info(h1.session('y')).shipIntervalSeconds).toBeNull();
  }, 30_000);
});

describe('the CLI on two agent processes', () => {
  let a: AgentProcess;
  let b: AgentProcess;
  beforeAll(async () => {
    [a, b] = await startPairedAgents();
  }, 120_000);
  afterAll(async () => {
    await Promise.allSettled([a?.stop(), b?.stop()]);
  });

  interface ShowJson {
    state: string;
    shipIntervalSeconds?: number | null;
    pairs: Array<{ h1Volume: string; state: string }>;
  }

  it('creates with --interval, shows it, changes it with set, ships with ship-now, and adds/removes copy sets of the running session', async () => {
    for (const [agent, names] of [
      [a, ['p1', 'p2']],
      [b, ['c1', 'c2']],
    ] as const) {
      for (const name of names) expect((await agent.cli(['volume', 'create', name, '16M'])).code).toBe(0);
    }
    const created = await agentCliJson<ShowJson>(a, ['session', 'create', 'ship', '--type', 'snapshot-shipping', '--peer', 'beta', '--interval', '3600']);
    expect(created.shipIntervalSeconds).toBe(3600);
    const badInterval = await a.cli(['session', 'create', 'bad', '--type', 'sync', '--peer', 'beta', '--interval', '5']);
    expect(badInterval.code).not.toBe(0);
    await agentCliJson(a, ['session', 'add', 'ship', 'p1', 'c1']);
    await agentCliJson(a, ['session', 'start', 'ship']);
    const deadline = Date.now() + 60_000;
    while ((await agentCliJson<ShowJson>(a, ['session', 'show', 'ship'])).state !== 'prepared') {
      if (Date.now() > deadline) throw new Error('never prepared');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    // Shown at the other site too, and it survives a restart (kept in the catalog).
    expect((await agentCliJson<ShowJson>(b, ['session', 'show', 'ship'])).shipIntervalSeconds).toBe(3600);
    const set = await agentCliJson<ShowJson>(b, ['session', 'set', 'ship', '--interval', '120']);
    expect(set.shipIntervalSeconds).toBe(120);
    await a.restart();
    expect((await agentCliJson<ShowJson>(a, ['session', 'show', 'ship'])).shipIntervalSeconds).toBe(120);
    const text = await a.cli(['session', 'show', 'ship']);
    expect(text.stdout).toMatch(/interval\s+120 s between shipping cycles/);

    const write = await runCommand('qemu-io', ['-f', 'raw', '-c', 'write -P 0x61 1M 128k', a.nbdUri('p1')]);
    expect(write.code, write.out).toBe(0);
    const shipped = await agentCliJson<{ tracks: number; time: string; cycle: number }>(a, ['session', 'ship-now', 'ship']);
    expect(shipped.tracks).toBeGreaterThanOrEqual(2);
    expect((await agentCliJson<{ consistencyTime: string }>(a, ['session', 'show', 'ship'])).consistencyTime).toBe(shipped.time);
    const compare = await runCommand('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', a.nbdUri('p1'), b.nbdUri('c1')]);
    expect(compare.out).toMatch(/Images are identical/);

    // Copy sets of the running session: the last one cannot go; a second one is added, shipped, and removed.
    const last = await a.cli(['session', 'remove', 'ship', 'p1', '--json']);
    expect(last.code).not.toBe(0);
    expect(last.stderr).toMatch(/invalid-state/);
    const unknown = await a.cli(['session', 'add', 'ship', 'nope', 'c2', '--json']);
    expect(unknown.stderr).toMatch(/not-found/);
    const added = await agentCliJson<ShowJson>(a, ['session', 'add', 'ship', 'p2', 'c2']);
    expect(added.pairs.map((pair) => pair.h1Volume).sort()).toEqual(['p1', 'p2']);
    const more = await runCommand('qemu-io', ['-f', 'raw', '-c', 'write -P 0x62 2M 64k', a.nbdUri('p2')]);
    expect(more.code, more.out).toBe(0);
    await agentCliJson(a, ['session', 'ship-now', 'ship']);
    const compare2 = await runCommand('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', a.nbdUri('p2'), b.nbdUri('c2')]);
    expect(compare2.out).toMatch(/Images are identical/);
    const removed = await agentCliJson<{ removed: string; session: ShowJson }>(a, ['session', 'remove', 'ship', 'p2']);
    expect(removed.session.pairs.map((pair) => pair.h1Volume)).toEqual(['p1']);
    expect((await agentCliJson<ShowJson>(b, ['session', 'show', 'ship'])).pairs).toHaveLength(1);
  }, 180_000);
});
