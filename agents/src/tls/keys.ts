/**
 * Keys, PEM and serial numbers with Node's WebCrypto alone. Kept apart from
 * x509.ts so that what runs at every start (loading the CA key, certificate
 * fingerprints) does without @peculiar/x509, which takes a good part of the
 * agent's start to load; it loads when a certificate is made.
 */
import { webcrypto } from 'node:crypto';

export type CryptoKey = webcrypto.CryptoKey;
export type CryptoKeyPair = webcrypto.CryptoKeyPair;

export const ecdsaP256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
export const ecdsaSha256 = { name: 'ECDSA', hash: 'SHA-256' } as const;

/** PEM text of DER bytes under a label (`PRIVATE KEY`, `PUBLIC KEY`, `CERTIFICATE`). */
export function pemEncode(der: ArrayBuffer | Uint8Array, label: string): string {
  const base64 = Buffer.from(der instanceof Uint8Array ? der : new Uint8Array(der)).toString('base64');
  return `-----BEGIN ${label}-----\n${base64.match(/.{1,64}/g)!.join('\n')}\n-----END ${label}-----`;
}

/** The DER bytes of the first PEM block in a text; throws when there is none. */
export function pemDecodeFirst(pem: string): Uint8Array {
  const match = /-----BEGIN [A-Z0-9 ]+-----([A-Za-z0-9+/=\s]*?)-----END [A-Z0-9 ]+-----/.exec(pem);
  if (!match) throw new TypeError('not PEM: no -----BEGIN …----- block');
  return new Uint8Array(Buffer.from(match[1].replace(/\s+/g, ''), 'base64'));
}

/** A fresh ECDSA P-256 key pair, extractable so it can be written as PEM. */
export async function generateKeyPair(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ecdsaP256, true, ['sign', 'verify'])) as CryptoKeyPair;
}

/** PKCS#8 PEM of a private key (what node:tls takes as `key`). */
export async function privateKeyToPem(key: CryptoKey): Promise<string> {
  return pemEncode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

/** SPKI PEM of a public key (what a client sends when pairing). */
export async function publicKeyToPem(key: CryptoKey): Promise<string> {
  return pemEncode(await webcrypto.subtle.exportKey('spki', key), 'PUBLIC KEY');
}

/** Imports a PKCS#8 PEM ECDSA P-256 private key for signing. */
export async function importSigningKey(pem: string): Promise<CryptoKey> {
  return webcrypto.subtle.importKey('pkcs8', pemDecodeFirst(pem), ecdsaP256, false, ['sign']);
}

/** A random positive serial number as uppercase hex without leading zeros (as Node prints it). */
export function randomSerial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] & 0x7f) | 0x10;
  return Buffer.from(bytes).toString('hex').toUpperCase();
}

/** Serial numbers compare as uppercase hex without leading zeros. */
export function normalizeSerial(serial: string): string {
  return serial.replace(/:/g, '').toUpperCase().replace(/^0+(?=.)/, '');
}
