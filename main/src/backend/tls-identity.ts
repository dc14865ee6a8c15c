import { createHash, generateKeyPair, X509Certificate } from 'node:crypto';
import { promisify } from 'node:util';

const generateKeyPairAsync = promisify(generateKeyPair);

export interface ClientKeyPair {
  /** SPKI PEM, sent to the agent when pairing. */
  publicKeyPem: string;
  /** PKCS#8 PEM; never leaves this machine. */
  privateKeyPem: string;
}

/** A fresh P-256 key pair for one site's client certificate. */
export async function generateClientKeyPair(): Promise<ClientKeyPair> {
  const { publicKey, privateKey } = await generateKeyPairAsync('ec', {
    namedCurve: 'prime256v1',
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { publicKeyPem: publicKey, privateKeyPem: privateKey };
}

/** SHA-256 fingerprint in the contract's `AB:CD:…` form. */
export function fingerprintOfDer(der: Buffer): string {
  const hex = createHash('sha256').update(der).digest('hex').toUpperCase();
  return hex.match(/../g)!.join(':');
}

/** SHA-256 fingerprint of a PEM certificate. */
export function fingerprintOfPem(pem: string): string {
  return fingerprintOfDer(new X509Certificate(pem).raw);
}

/** Compares fingerprints written with or without colons, in any case. */
export function sameFingerprint(a: string, b: string): boolean {
  const normal = (text: string) => text.replace(/[^0-9a-f]/gi, '').toUpperCase();
  return normal(a).length === 64 && normal(a) === normal(b);
}
