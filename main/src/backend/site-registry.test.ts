import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ProblemError } from '@tandem/contract';
import type { SecretBox } from './secret-box.ts';
import { plainSecretBox } from './secret-box.ts';
import { SiteRegistry, type SiteCredentials } from './site-registry.ts';

const site = (id: string): SiteCredentials => ({
  id,
  site: `site-${id}`,
  address: '127.0.0.1:7450',
  certificateFingerprint: 'AA:BB',
  caCertificate: 'CA PEM',
  clientCertificate: 'CERT PEM',
  clientKeyPem: `KEY OF ${id}`,
  addedAt: '2026-01-01T00:00:00.000Z',
});

describe('SiteRegistry', () => {
  let dir: string;
  beforeEach(async () => {
    dir = path.join(await mkdtemp(path.join(os.tmpdir(), 'tandem-registry-')), 'config');
  });
  afterEach(async () => rm(path.dirname(dir), { recursive: true, force: true }));

  it('persists sites in a 0600 file and reads them back', async () => {
    const registry = await SiteRegistry.open(dir, plainSecretBox);
    await registry.add(site('a'));
    await registry.add(site('b'));
    const file = path.join(dir, 'sites.json');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    const reopened = await SiteRegistry.open(dir, plainSecretBox);
    expect(reopened.list().map((entry) => entry.id)).toEqual(['a', 'b']);
    expect(reopened.get('b')?.clientKeyPem).toBe('KEY OF b');
  });

  it('removing a site removes its credentials from disk', async () => {
    const registry = await SiteRegistry.open(dir, plainSecretBox);
    await registry.add(site('a'));
    await registry.add(site('b'));
    expect(await registry.remove('a')).toBe(true);
    const text = await readFile(path.join(dir, 'sites.json'), 'utf8');
    expect(text).not.toContain('KEY OF a');
    expect(text).toContain('KEY OF b');
    expect(await registry.remove('a')).toBe(false);
  });

  it('refuses a site that is already there', async () => {
    const registry = await SiteRegistry.open(dir, plainSecretBox);
    await registry.add(site('a'));
    await expect(registry.add(site('a'))).rejects.toMatchObject({ problem: 'already-exists' });
  });

  it('stores the key sealed by the secret box', async () => {
    const reversing: SecretBox = {
      protection: 'safe-storage',
      seal: (plain) => [...plain].reverse().join(''),
      open: (sealed) => [...sealed].reverse().join(''),
    };
    const registry = await SiteRegistry.open(dir, reversing);
    await registry.add(site('a'));
    const text = await readFile(path.join(dir, 'sites.json'), 'utf8');
    expect(text).not.toContain('KEY OF a');
    expect(registry.get('a')?.clientKeyPem).toBe('KEY OF a');
    // Plain Node cannot open a key sealed by the OS keychain, and says so.
    const plain = await SiteRegistry.open(dir, plainSecretBox);
    expect(() => plain.list()).toThrow(ProblemError);
  });

  it('rejects a file that is not a registry', async () => {
    await SiteRegistry.open(dir, plainSecretBox).then((registry) => registry.add(site('a')));
    await writeFile(path.join(dir, 'sites.json'), '{"sites": 3}');
    await expect(SiteRegistry.open(dir, plainSecretBox)).rejects.toThrow(/not a Tandem site registry/);
  });
});
