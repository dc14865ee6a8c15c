import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkDataDir } from '../src/storage/check.ts';
import { StorageEngine } from '../src/storage/engine.ts';
import { startTwoSites, waitFor, type TwoSites } from './helpers/replication-sites.ts';

const TRACK = 65536;
const MiB = 1024 * 1024;

let sites: TwoSites | null = null;
const rejections: unknown[] = [];
const onRejection = (reason: unknown) => rejections.push(reason);

afterEach(async () => {
  process.off('unhandledRejection', onRejection);
  rejections.length = 0;
  if (!sites) return;
  // h1 was closed by the test: close h2 and the proxy, then remove both data dirs.
  await sites.h2.replication.close();
  await sites.h2.engine.close();
  await sites.proxy.close();
  await fs.rm(path.dirname(sites.h1.dir), { recursive: true, force: true });
  sites = null;
});

describe('replication close', () => {
  it('waits for a running resync (initial copy) to end before the engine closes; the data dir checks clean and reopens', async () => {
    process.on('unhandledRejection', onRejection);
    sites = await startTwoSites();
    const s = sites;
    const size = 32 * MiB;
    await s.h1.engine.createVolume('prod', size);
    await s.h2.engine.createVolume('copy', size);
    await s.h1.replication.exports.openExport('prod').write(0, randomBytes(size));
    await s.h1.replication.service.createSession('s1', 'sync', 'beta');
    await s.h1.replication.service.addPair('s1', 'prod', 'copy');
    // A slow link keeps the initial copy (512 tracks) running while the site closes.
    s.proxy.setLatency(40);
    await s.h1.replication.service.act('s1', 'start');
    const pair = s.h1.replication.service.pairsOf(s.h1.replication.service.session('s1'))[0];
    await waitFor(() => (s.h1.replication.service.sourceOf(pair)?.progress.copied ?? 0) > 0, 30_000, 'the initial copy running');
    const source = s.h1.replication.service.sourceOf(pair)!;
    expect(source.isResyncing).toBe(true);

    // The service's close returns only after the resync ended (the link is still up: it ends at its next step).
    await s.h1.replication.service.close();
    expect(source.isResyncing, 'the resync ended before close returned').toBe(false);
    await s.h1.replication.close();
    const copiedAtClose = source.progress.copied;
    expect(copiedAtClose).toBeLessThan(size / TRACK);
    await s.h1.engine.close();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(source.progress.copied, 'no copy step ran after close').toBe(copiedAtClose);

    expect((await checkDataDir(s.h1.dir)).problems).toEqual([]);
    const reopened = await StorageEngine.open(s.h1.dir);
    expect(reopened.device('prod').sizeBytes).toBe(size);
    await reopened.close();
    expect((await checkDataDir(s.h1.dir)).problems).toEqual([]);
    expect(rejections).toEqual([]);
  }, 90_000);

  it('waits for a running snapshot-shipping cycle to end before the engine closes; the data dir checks clean and reopens', async () => {
    process.on('unhandledRejection', onRejection);
    sites = await startTwoSites();
    const s = sites;
    const size = 32 * MiB;
    await s.h1.engine.createVolume('prod', size);
    await s.h2.engine.createVolume('copy', size);
    await s.h1.replication.exports.openExport('prod').write(0, randomBytes(size));
    const service = s.h1.replication.service;
    await service.createSession('s1', 'snapshot-shipping', 'beta', { shipIntervalMs: 60 * 60_000 });
    await service.addPair('s1', 'prod', 'copy');
    // A slow link keeps the first cycle (512 tracks) running while the site closes.
    s.proxy.setLatency(40);
    await service.act('s1', 'start');
    const pair = service.pairsOf(service.session('s1'))[0];
    await waitFor(() => (service.sourceOf(pair)?.progress.copied ?? 0) > 0, 30_000, 'the first cycle shipping');
    const source = service.sourceOf(pair)!;
    // Queued behind the cycle in progress: it settles once that cycle ended (with null: the shipper stopped).
    let cycleEnded = false;
    const queued = service.shippingOf('s1')!.shipNow().finally(() => (cycleEnded = true));

    await service.close();
    expect(cycleEnded, 'the cycle in progress ended before close returned').toBe(true);
    expect(await queued).toBeNull();
    const copiedAtClose = source.progress.copied;
    expect(copiedAtClose).toBeLessThan(size / TRACK);
    await s.h1.replication.close();
    await s.h1.engine.close();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(source.progress.copied, 'no cycle step ran after close').toBe(copiedAtClose);

    expect((await checkDataDir(s.h1.dir)).problems).toEqual([]);
    const reopened = await StorageEngine.open(s.h1.dir);
    expect(reopened.device('prod').sizeBytes).toBe(size);
    await reopened.close();
    expect((await checkDataDir(s.h1.dir)).problems).toEqual([]);
    expect(rejections).toEqual([]);
  }, 90_000);
});
