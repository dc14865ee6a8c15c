import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { dataDirPaths } from '../data-dir.ts';
import { createAuthority, issueWithNewKey, loadAuthority, type Authority } from './authority.ts';
import { Catalog } from '../storage/catalog.ts';
import { certificateFingerprint } from './fingerprint.ts';
import { recordClient } from './pairing.ts';
import { tlsPaths } from './paths.ts';

// The file names and the admin's credentials live in paths.ts, which the CLI's
// admin commands load without the certificate code.
export { loadAdminCredentials, tlsPaths, type ClientCredentials } from './paths.ts';

/** What `init` made: the admin client's serial goes into the catalog's `clients` table. */
export interface TlsInitResult {
  serverFingerprint: string;
  caFingerprint: string;
  adminSerial: string;
  adminFingerprint: string;
}

/** Names the API server certificate answers to. */
export function serverAltNames(hostname = os.hostname()): string[] {
  return [...new Set(['localhost', '127.0.0.1', '::1', hostname].filter(Boolean))];
}

/**
 * Makes the agent's CA, API server certificate and local admin client
 * certificate, and records the admin in the catalog's `clients` table (the
 * API accepts only recorded clients). Call after `initDataDir`. Refuses to
 * overwrite existing files.
 */
export async function initTls(dataDir: string, identity: { site: string; agentId: string }): Promise<TlsInitResult> {
  const files = tlsPaths(dataDir);
  await mkdir(files.dir, { recursive: true, mode: 0o700 });
  const { authority, keyPem } = await createAuthority(identity.site, identity.agentId);
  const server = await issueWithNewKey(authority, {
    commonName: `tandem-agent ${identity.site}`,
    usage: 'server',
    altNames: serverAltNames(),
  });
  const admin = await issueWithNewKey(authority, { commonName: `local-admin ${identity.site}`, usage: 'client', role: 'administrator' });
  const write = (file: string, text: string, mode: number) => writeFile(file, text, { mode, flag: 'wx' });
  await write(files.caKey, keyPem, 0o600);
  await write(files.caCertificate, authority.certificatePem, 0o644);
  await write(files.serverKey, server.keyPem, 0o600);
  await write(files.serverCertificate, server.certificatePem, 0o644);
  await write(files.adminKey, admin.keyPem, 0o600);
  await write(files.adminCertificate, admin.certificatePem, 0o644);
  const adminFingerprint = certificateFingerprint(admin.certificatePem);
  const catalog = new Catalog(dataDirPaths(dataDir).catalog);
  try {
    recordClient(catalog.db, { serial: admin.serial, name: 'local-admin', fingerprint: adminFingerprint, role: 'administrator' });
  } finally {
    catalog.close();
  }
  return {
    serverFingerprint: certificateFingerprint(server.certificatePem),
    caFingerprint: certificateFingerprint(authority.certificatePem),
    adminSerial: admin.serial,
    adminFingerprint,
  };
}

/** What the API server needs: its certificate and key, and the CA that signs (and verifies) clients. */
export interface ServerTls {
  authority: Authority;
  caPem: string;
  certificatePem: string;
  keyPem: string;
  fingerprint: string;
}

export async function loadServerTls(dataDir: string): Promise<ServerTls> {
  const files = tlsPaths(dataDir);
  const [caPem, caKeyPem, certificatePem, keyPem] = await Promise.all(
    [files.caCertificate, files.caKey, files.serverCertificate, files.serverKey].map((file) => readFile(file, 'utf8')),
  );
  return {
    authority: await loadAuthority(caPem, caKeyPem),
    caPem,
    certificatePem,
    keyPem,
    fingerprint: certificateFingerprint(certificatePem),
  };
}

