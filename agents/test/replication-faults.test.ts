import { randomBytes, randomInt } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { loadServerTls } from '../src/tls/files.ts';
import { readAll, startSite, startTwoSites, waitFor, type Site, type TwoSites } from './helpers/replication-sites.ts';
import { startWriter } from './helpers/replication-writer.ts';

/**
 * Link faults between two sites in one process: the link cut at random
 * points during the initial copy and during host writes, and peers with the
 * wrong certificates.
 */

const MiB = 1024 * 1024;

let sites: TwoSites | null = null;
const extra: Array<{ site: Site; root: string }> = [];
afterEach(async () => {
  await sites?.close();
  sites = null;
  for (const { site, root } of extra.splice(0)) {
    await site.replication.close();
    await site.engine.close();
    await fs.rm(root, { recursive: true, force: true });
  }
});

const host = (s: TwoSites, site: 'h1' | 'h2', volume: string) => s[site].replication.exports.openExport(volume);
const state = (s: TwoSites, site: 'h1' | 'h2') => s[site].replication.service.session('s1').state;
const events = (site: Site, type: string) => site.engine.catalog.listEvents(0, 1000).filter((event) => event.type === type);

describe('link cut at random points', () => {
  it('during the initial copy and during host writes: the pair converges by itself and the images are identical', async () => {
    sites = await startTwoSites();
    const s = sites;
    const size = 64 * MiB;
    await s.h1.engine.createVolume('prod', size);
    await s.h2.engine.createVolume('copy', size);
    await host(s, 'h1', 'prod').write(0, randomBytes(size));
    await s.h1.replication.service.createSession('s1', 'sync', 'beta');
    await s.h1.replication.service.addPair('s1', 'prod', 'copy');

    const cutsAt: number[] = [];
    const cut = async (maxBytes: number) => {
      const bytes = randomInt(64 * 1024, maxBytes);
      cutsAt.push(bytes);
      const before = s.proxy.cuts;
      s.proxy.cutAfterBytes(bytes);
      await waitFor(() => s.proxy.cuts > before, 60_000, `a cut after ${bytes} bytes`);
    };

    // Initial copy: three cuts at random byte counts while it runs.
    await s.h1.replication.service.act('s1', 'start');
    for (let i = 0; i < 3; i++) await cut(12 * MiB);
    await waitFor(() => state(s, 'h1') === 'prepared', 90_000, 'prepared after the cuts of the initial copy');
    const suspended = () =>
      s.h1.engine.catalog.listEvents(0, 1000).filter((event) => event.type === 'session.state' && event.data?.to === 'suspended').length;
    const suspendedInCopy = suspended();
    // The first cut comes well before 64 MiB crossed: the copy was cut mid-transfer at least once.
    expect(suspendedInCopy).toBeGreaterThanOrEqual(1);
    const initialUp = s.proxy.forwarded.up;
    // Each resume copied only what was still marked: far from a full copy per cut.
    expect(initialUp).toBeLessThan(size * 1.5);

    // Host writes: three more cuts while they go on; no host write fails.
    const writer = startWriter(host(s, 'h1', 'prod'), { workers: 4 });
    for (let i = 0; i < 3; i++) {
      await cut(2 * MiB);
      await waitFor(() => state(s, 'h1') === 'prepared', 60_000, 'prepared again while writing');
    }
    const written = await writer.stop();
    expect(written.errors).toEqual([]);
    expect(written.writes).toBeGreaterThan(100);

    await waitFor(() => state(s, 'h1') === 'prepared', 60_000, 'prepared at the end');
    // Every cut reset the link (a cut landing between requests only redials; one cutting a request suspends the session).
    expect(events(s.h1, 'link.down').length, `cuts after ${cutsAt.join(', ')} bytes`).toBeGreaterThanOrEqual(6);
    expect(suspended() - suspendedInCopy, 'host writes were cut mid-transfer').toBeGreaterThanOrEqual(1);
    expect(s.h1.replication.service.info(s.h1.replication.service.session('s1')).pairs[0].state).toBe('duplex');
    expect((await readAll(s.h1, 'prod')).equals(await readAll(s.h2, 'copy')), `identical after cuts at ${cutsAt.join(', ')}`).toBe(true);
  }, 240_000);
});

describe('wrongly certified peers', () => {
  it('a site with its own CA dialling the link is refused, and the refusal is an event', async () => {
    sites = await startTwoSites();
    const s = sites;
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'tandem-gamma-'));
    const gamma = await startSite('gamma', root);
    extra.push({ site: gamma, root });
    // gamma pins beta's CA, but beta never paired with gamma: its client certificate is not trusted there.
    gamma.replication.peers.add({
      agentId: s.h2.engine.identity.agentId,
      site: 'beta',
      caPem: (await loadServerTls(s.h2.dir)).authority.certificatePem,
      linkAddress: s.h2.replication.linkAddress,
      apiAddress: null,
    });
    const before = events(s.h2, 'peer.refused').length;
    await expect(gamma.replication.peers.link(s.h2.engine.identity.agentId).call('volume.size', { name: 'x' }, null, { waitForLinkMs: 1500 })).rejects.toMatchObject({
      problem: 'link-down',
    });
    await waitFor(() => events(s.h2, 'peer.refused').length > before, 10_000, 'a peer.refused event at beta');
    const refused = events(s.h2, 'peer.refused').at(-1)!;
    expect(refused.severity).toBe('warning');
    expect(refused.message).toMatch(/refused a peer link connection/);
  });

  it('a certificate of the agent\'s own CA (not a paired site) is refused after the handshake, and the refusal is an event', async () => {
    sites = await startTwoSites();
    const s = sites;
    // beta's own peer-link client certificate: issued by beta's CA, which beta trusts, but it names no paired site.
    const own = s.h2.replication.peers.credentials.client;
    const [hostName, port] = s.h2.replication.linkAddress.split(':');
    const before = events(s.h2, 'peer.refused').length;
    const closed = await new Promise<boolean>((resolve) => {
      const socket = tls.connect({
        host: hostName,
        port: Number(port),
        cert: own.certificatePem,
        key: own.keyPem,
        ca: [own.caPem],
        checkServerIdentity: () => undefined,
      });
      socket.on('error', () => {});
      socket.on('close', () => resolve(true));
      setTimeout(() => resolve(false), 5000).unref();
    });
    expect(closed, 'beta closed the connection').toBe(true);
    await waitFor(() => events(s.h2, 'peer.refused').length > before, 10_000, 'a peer.refused event at beta');
    expect(events(s.h2, 'peer.refused').at(-1)!.message).toMatch(/not from a paired site/);
  });

  it('a pairing entry with the wrong CA: the dialling site refuses the peer it reaches, the link stays down', async () => {
    sites = await startTwoSites();
    const s = sites;
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'tandem-gamma-'));
    const gamma = await startSite('gamma', root);
    extra.push({ site: gamma, root });
    // alpha's entry for beta pins gamma's CA: beta's server certificate does not verify against it.
    s.h1.replication.peers.add({
      agentId: s.h2.engine.identity.agentId,
      site: 'beta',
      caPem: (await loadServerTls(gamma.dir)).authority.certificatePem,
      linkAddress: s.proxy.address,
      apiAddress: null,
    });
    const link = s.h1.replication.peers.link(s.h2.engine.identity.agentId);
    await expect(link.call('volume.size', { name: 'x' }, null, { waitForLinkMs: 1500 })).rejects.toMatchObject({ problem: 'link-down' });
    await waitFor(() => events(s.h1, 'link.down').length > 0, 10_000, 'a link.down event at alpha');
    expect(events(s.h1, 'link.down').at(-1)!.message).toMatch(/certificate|verify|signature/i);
    expect(events(s.h1, 'link.up')).toHaveLength(0);
    // beta saw the aborted handshake as a refused connection.
    await waitFor(() => events(s.h2, 'peer.refused').length > 0, 10_000, 'a peer.refused event at beta');
  });
});
