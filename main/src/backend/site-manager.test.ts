import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { plainSecretBox, type SecretBox } from './secret-box.ts';
import { SiteManager } from './site-manager.ts';
import { SiteRegistry } from './site-registry.ts';

const keychain: SecretBox = { protection: 'safe-storage', seal: (text) => `sealed:${text}`, open: (text) => text.slice(7) };

describe('SiteManager', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tandem-manager-'));
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it('lists a site whose key only another keychain opens as offline, and can remove it', async () => {
    const desktop = await SiteRegistry.open(dir, keychain);
    await desktop.add({
      id: 'agent-1',
      site: 'primary',
      address: '127.0.0.1:1',
      certificateFingerprint: 'AA',
      caCertificate: 'CA',
      clientCertificate: 'CERT',
      clientKeyPem: 'KEY',
      addedAt: '2026-01-01T00:00:00.000Z',
    });
    const manager = new SiteManager(await SiteRegistry.open(dir, plainSecretBox));
    manager.start();
    const [site] = manager.list();
    expect(site).toMatchObject({ site: 'primary', connection: { state: 'offline', lastProblem: { problem: 'access-denied' } } });
    expect(() => manager.client('agent-1')).toThrow(/safe-storage/);
    await manager.remove('agent-1');
    expect(manager.list()).toEqual([]);
    expect((await SiteRegistry.open(dir, plainSecretBox)).describe()).toEqual([]);
    manager.stop();
  });
});
