/**
 * Clusters over real sessions: two sites in one process (real engines, real
 * peer link over mutual TLS, a fault proxy on alpha -> beta). The processor
 * runs at alpha; members are sessions of alpha and of beta (reached with
 * `cluster.report` over the link). Sessions really change state and the
 * master data set must say so.
 */
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { MdsRecord } from '@tandem/contract';
import { ClusterManager } from '../src/replication/clusters/manager.ts';
import { startTwoSites, waitFor, type Site, type TwoSites } from './helpers/replication-sites.ts';

const MiB = 1024 * 1024;

let sites: TwoSites | null = null;
const extra: ClusterManager[] = [];
afterEach(async () => {
  for (const manager of extra.splice(0)) await manager.close();
  // A link left blackholed keeps a TLS handshake pending at beta's listener, which would hold its close.
  sites?.proxy.blackhole(false);
  sites?.proxy.resetAll();
  await sites?.close();
  sites = null;
});

/** Polls the master data set at alpha until its newest record matches. */
async function waitForRecord(site: Site, cluster: string, match: (record: MdsRecord) => boolean, what: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  let last: MdsRecord | undefined;
  for (;;) {
    const { records } = await site.replication.clusters.history(cluster, 1);
    last = records[0];
    if (last && match(last)) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; newest record: ${JSON.stringify(last)}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

const memberState = (record: MdsRecord, session: string) => record.members.find((m) => m.session === session)?.state;
const clusterEvents = (site: Site, type: string) =>
  site.engine.catalog.listEvents(0, 1000).filter((event) => event.type === type && event.subject === 'c1');

/** s1: alpha -> beta, defined at alpha. s2: beta -> alpha, defined at beta (its mirroring does not cross the proxy). */
async function twoSessions(s: TwoSites): Promise<void> {
  await s.h1.engine.createVolume('a1', 4 * MiB);
  await s.h1.engine.createVolume('a2', 4 * MiB);
  await s.h2.engine.createVolume('b1', 4 * MiB);
  await s.h2.engine.createVolume('b2', 4 * MiB);
  await s.h1.replication.service.createSession('s1', 'sync', 'beta');
  await s.h1.replication.service.addPair('s1', 'a1', 'b1');
  await s.h2.replication.service.createSession('s2', 'sync', 'alpha');
  await s.h2.replication.service.addPair('s2', 'b2', 'a2');
}

describe('clusters', () => {
  it('consolidates local and remote members as their sessions change: minimum consistency time, worst health', async () => {
    sites = await startTwoSites();
    const s = sites;
    await twoSessions(s);
    const clusters = s.h1.replication.clusters;
    await clusters.create({ name: 'c1', intervalSeconds: 0.1 });
    await clusters.addMember('c1', 's1');
    const added = await clusters.addMember('c1', 's2', 'beta');
    expect(added.members.map((m) => [m.session, m.site, m.local])).toEqual([
      ['s1', 'alpha', true],
      ['s2', 'beta', false],
    ]);

    // Both defined: inactive, no consistent image.
    let record = await waitForRecord(s.h1, 'c1', (r) => r.members.length === 2, 'a first record');
    expect(record).toMatchObject({ health: 'inactive', consistencyTime: null, exposureSeconds: null });
    expect(record.members.map((m) => [m.status, m.state])).toEqual([
      ['reporting', 'defined'],
      ['reporting', 'defined'],
    ]);

    // s1 prepared, s2 still defined: the cluster is normal but has no consistency time yet (s2 has none).
    await s.h1.replication.service.act('s1', 'start');
    record = await waitForRecord(s.h1, 'c1', (r) => memberState(r, 's1') === 'prepared', 's1 prepared in the master data set');
    expect(record.health).toBe('normal');
    expect(record.consistencyTime).toBeNull();

    // s2 started at beta: both prepared, a consistency time within the last moments.
    await s.h2.replication.service.act('s2', 'start');
    record = await waitForRecord(s.h1, 'c1', (r) => memberState(r, 's2') === 'prepared', 's2 prepared (reported by beta)');
    expect(record.health).toBe('normal');
    expect(record.consistencyTime).not.toBeNull();
    expect(Date.parse(record.time) - Date.parse(record.consistencyTime!)).toBeLessThan(5000);
    expect(record.exposureSeconds).toBeLessThan(5);

    // Suspend s1: its consistency time freezes and becomes the cluster's (the minimum); health is the worst, warning.
    await s.h1.replication.service.act('s1', 'suspend');
    const frozen = s.h1.replication.service.info(s.h1.replication.service.session('s1')).consistencyTime!;
    expect(frozen).not.toBeNull();
    record = await waitForRecord(
      s.h1,
      'c1',
      (r) => memberState(r, 's1') === 'suspended' && Date.parse(r.time) - Date.parse(frozen) >= 300,
      's1 suspended for a while',
    );
    expect(record.health).toBe('warning');
    expect(record.consistencyTime).toBe(frozen);
    const s2 = record.members.find((m) => m.session === 's2')!;
    expect(Date.parse(s2.consistencyTime!)).toBeGreaterThan(Date.parse(frozen));
    expect(record.exposureSeconds!).toBeGreaterThanOrEqual((Date.parse(record.time) - Date.parse(frozen)) / 1000 - 0.01);
    expect(record.exposureSeconds!).toBeGreaterThanOrEqual(0.3);
    const info = clusters.info('c1');
    expect(info).toMatchObject({ health: 'warning', consistencyTime: frozen });

    // The health change is an event.
    expect(clusterEvents(s.h1, 'cluster.health').map((e) => [e.data?.from, e.data?.to])).toContainEqual(['normal', 'warning']);

    // Resume: normal again, and the cluster's consistency time moves on.
    await s.h1.replication.service.act('s1', 'resume');
    record = await waitForRecord(s.h1, 'c1', (r) => memberState(r, 's1') === 'prepared' && r.health === 'normal', 's1 prepared again');
    expect(Date.parse(record.consistencyTime!)).toBeGreaterThan(Date.parse(frozen));

    // Any site can read the master data set: beta fetches it from alpha over the peer link.
    const { lastSequence } = clusters.info('c1').masterDataSet;
    const remote = await s.h2.replication.clusters.history('c1', 5, 'alpha');
    expect(remote.site).toBe('alpha');
    expect(remote.records).toHaveLength(5);
    expect(remote.records.at(-1)!.sequence).toBeGreaterThanOrEqual(lastSequence);
    expect(remote.records.map((r) => r.sequence)).toEqual(
      Array.from({ length: 5 }, (_, i) => remote.records[0].sequence + i),
    );
    // The whole history shows the path the sessions took.
    const all = (await clusters.history('c1', 10_000)).records;
    // (records caught while a session was between states, preparing or suspending, are left out)
    const steady = all.filter((r) => r.members.every((m) => m.state !== 'preparing' && m.state !== 'suspending'));
    const healths = steady.map((r) => r.health).filter((h, i, list) => i === 0 || list[i - 1] !== h);
    expect(healths).toEqual(['inactive', 'normal', 'warning', 'normal']);
  });

  it('shows a member that stops reporting as unknown and the cluster as warning, until it reports again', async () => {
    sites = await startTwoSites();
    const s = sites;
    await twoSessions(s);
    await s.h2.replication.service.act('s2', 'start');
    await waitFor(() => s.h2.replication.service.session('s2').state === 'prepared', 20_000, 's2 prepared');
    const clusters = s.h1.replication.clusters;
    await clusters.create({ name: 'c1', intervalSeconds: 0.2 });
    await clusters.addMember('c1', 's2', 'beta');
    expect(clusters.info('c1').timeoutSeconds).toBeCloseTo(0.6);
    await waitForRecord(s.h1, 'c1', (r) => r.health === 'normal' && r.consistencyTime !== null, 'a normal record');

    // Cut alpha -> beta: beta cannot be asked any more. s2 itself stays prepared at beta.
    s.proxy.blackhole(true);
    const cutAt = Date.now();
    const unknown = await waitForRecord(s.h1, 'c1', (r) => r.members[0].status === 'unknown', 's2 unknown', 10_000);
    expect(Date.now() - cutAt).toBeGreaterThanOrEqual(300); // not at once: after the timeout (3 intervals) since the last report
    expect(unknown.health).toBe('warning');
    expect(unknown.members[0]).toMatchObject({ session: 's2', site: 'beta', state: 'unknown', health: 'unknown' });
    expect(s.h2.replication.service.session('s2').state).toBe('prepared');
    // The last consistency time it reported bounds the cluster's; exposure keeps growing.
    const later = await waitForRecord(
      s.h1,
      'c1',
      (r) => r.members[0].status === 'unknown' && Date.parse(r.time) - Date.parse(unknown.time) >= 500,
      's2 still unknown half a second later',
    );
    expect(later.consistencyTime).toBe(unknown.consistencyTime);
    expect(later.exposureSeconds!).toBeGreaterThanOrEqual(unknown.exposureSeconds! + 0.5);
    expect(clusters.info('c1').members[0]).toMatchObject({ status: 'unknown' });
    expect(clusterEvents(s.h1, 'cluster.member').map((e) => e.data?.status)).toEqual(['unknown']);
    expect(clusterEvents(s.h1, 'cluster.health').map((e) => e.data?.to)).toContain('warning');

    // The link comes back: reporting, normal, the consistency time moves again.
    s.proxy.blackhole(false);
    const back = await waitForRecord(s.h1, 'c1', (r) => r.members[0].status === 'reporting' && r.health === 'normal', 's2 reporting again', 30_000);
    expect(Date.parse(back.consistencyTime!)).toBeGreaterThan(Date.parse(unknown.consistencyTime!));
    expect(clusterEvents(s.h1, 'cluster.member').map((e) => e.data?.status)).toEqual(['unknown', 'reporting']);
  });

  it('keeps definitions and the master data set across a restart of the processor, and refuses bad members', async () => {
    sites = await startTwoSites();
    const s = sites;
    await twoSessions(s);
    const clusters = s.h1.replication.clusters;
    await clusters.create({ name: 'c1', intervalSeconds: 0.05 });
    await expect(clusters.create({ name: 'c1' })).rejects.toMatchObject({ problem: 'already-exists' });
    await expect(clusters.addMember('c1', 'nope')).rejects.toMatchObject({ problem: 'not-found' });
    await expect(clusters.addMember('c1', 'nope', 'beta')).rejects.toMatchObject({ problem: 'not-found' });
    await expect(clusters.addMember('c1', 's1', 'gamma')).rejects.toMatchObject({ problem: 'not-paired' });
    await expect(clusters.addMember('c9', 's1')).rejects.toMatchObject({ problem: 'not-found' });
    await clusters.addMember('c1', 's1');
    // s1 seen from beta is the same session: refused.
    await expect(clusters.addMember('c1', 's1', 'beta')).rejects.toMatchObject({ problem: 'already-exists' });
    await clusters.addMember('c1', 's2', 'beta');
    await waitForRecord(s.h1, 'c1', (r) => r.sequence >= 5, 'five records');
    await clusters.close();

    const before = await s.h1.replication.clusters.history('c1', 1).catch(() => null);
    expect(before).toBeNull(); // closed: no cluster served
    const reopened = await ClusterManager.open({
      service: s.h1.replication.service,
      peers: s.h1.replication.peers,
      catalog: s.h1.engine.catalog,
      dataDir: s.h1.dir,
      logger: pino({ level: 'silent' }),
    });
    extra.push(reopened);
    const info = reopened.info('c1');
    expect(info.intervalSeconds).toBe(0.05);
    expect(info.members.map((m) => `${m.session}@${m.site}`)).toEqual(['s1@alpha', 's2@beta']);
    const last = info.masterDataSet.lastSequence;
    expect(last).toBeGreaterThanOrEqual(5);
    await waitFor(() => reopened.info('c1').masterDataSet.lastSequence > last + 2, 10_000, 'records after the restart');
    const { records } = await reopened.history('c1', 10_000);
    expect(records.map((r) => r.sequence)).toEqual(Array.from({ length: records.length }, (_, i) => i + 1));

    // Removing a member, then deleting the cluster with its master data set.
    expect(reopened.removeMember('c1', 's2').members.map((m) => m.session)).toEqual(['s1']);
    expect(() => reopened.removeMember('c1', 's2')).toThrow(/not in cluster c1/);
    await reopened.delete('c1');
    expect(reopened.list()).toEqual([]);
    await expect(reopened.history('c1', 1)).rejects.toMatchObject({ problem: 'not-found' });
  });
});
