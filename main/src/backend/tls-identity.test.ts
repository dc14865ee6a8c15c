import { createPublicKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { fingerprintOfDer, generateClientKeyPair, sameFingerprint } from './tls-identity.ts';

describe('tls identity', () => {
  it('makes a P-256 key pair with an SPKI public key', async () => {
    const keys = await generateClientKeyPair();
    expect(keys.publicKeyPem).toContain('BEGIN PUBLIC KEY');
    expect(keys.privateKeyPem).toContain('BEGIN PRIVATE KEY');
    expect(createPublicKey(keys.publicKeyPem).asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
  });

  it('writes fingerprints as colon-separated upper-case SHA-256', () => {
    const fingerprint = fingerprintOfDer(Buffer.from('abc'));
    expect(fingerprint).toBe('BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD');
  });

  it('compares fingerprints whatever their case or separators', () => {
    const fingerprint = fingerprintOfDer(Buffer.from('abc'));
    expect(sameFingerprint(fingerprint, fingerprint.replace(/:/g, '').toLowerCase())).toBe(true);
    expect(sameFingerprint(fingerprint, fingerprintOfDer(Buffer.from('abd')))).toBe(false);
    expect(sameFingerprint('', '')).toBe(false);
  });
});
