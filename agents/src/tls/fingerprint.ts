import { createHash } from 'node:crypto';
import { pemDecodeFirst } from './keys.ts';

/** SHA-256 fingerprint of a certificate (PEM or DER) as `AB:CD:…`, the form Node's `fingerprint256` uses. */
export function certificateFingerprint(certificate: string | Uint8Array): string {
  const der = typeof certificate === 'string' ? pemDecodeFirst(certificate) : certificate;
  const hex = createHash('sha256').update(der).digest('hex').toUpperCase();
  return hex.match(/../g)!.join(':');
}
