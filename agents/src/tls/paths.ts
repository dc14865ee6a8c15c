import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { dataDirPaths } from '../data-dir.ts';

/** The files of `DATA/tls/`. Keys are written mode 0600. */
export function tlsPaths(dataDir: string) {
  const dir = dataDirPaths(dataDir).tls;
  return {
    dir,
    caCertificate: path.join(dir, 'ca.pem'),
    caKey: path.join(dir, 'ca-key.pem'),
    serverCertificate: path.join(dir, 'server.pem'),
    serverKey: path.join(dir, 'server-key.pem'),
    adminCertificate: path.join(dir, 'admin.pem'),
    adminKey: path.join(dir, 'admin-key.pem'),
  };
}

/** The local admin's client credentials (used by the CLI's admin commands and tests). */
export interface ClientCredentials {
  caPem: string;
  certificatePem: string;
  keyPem: string;
}

export async function loadAdminCredentials(dataDir: string): Promise<ClientCredentials> {
  const files = tlsPaths(dataDir);
  const [caPem, certificatePem, keyPem] = await Promise.all(
    [files.caCertificate, files.adminCertificate, files.adminKey].map((file) => readFile(file, 'utf8')),
  );
  return { caPem, certificatePem, keyPem };
}
