/**
 * @peculiar/x509 wired to Node's WebCrypto. Import x509 from here, never
 * directly, so the crypto provider and reflect-metadata are always set up.
 * Heavy to load: the agent imports it only to make certificates (see
 * authority.ts); keys and PEM are in keys.ts (re-exported here).
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export { x509, webcrypto };
export * from './keys.ts';
