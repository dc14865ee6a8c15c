import path from 'node:path';
import { nbdUri } from './fio.ts';
import { freePort, waitForPort } from './net.ts';
import { startServer, stopServer, type Server } from './procs.ts';

/** An NBD export the fio jobs can hit. */
export interface Endpoint {
  name: string;
  uri: string;
  /** The serving process, for its CPU time per operation. */
  pid?: number;
  /** The files holding the export's data (the cold-read leg drops them from the page cache). */
  dataFiles?: () => string[];
  stop(): Promise<void>;
}

function endpoint(name: string, server: Server, port: number, exportName: string, file: string): Endpoint {
  return { name, uri: nbdUri(port, exportName), pid: server.child.pid, dataFiles: () => [file], stop: () => stopServer(server) };
}

/**
 * qemu-nbd with its default cache mode, kept up across connections, serving
 * up to 8 at once (its default is 1); `tlsDir` (ca-cert.pem, server-cert.pem,
 * server-key.pem) requires x509 TLS from clients.
 */
export async function startQemuNbd(file: string, logDir: string, exportName = 'bench', format = 'raw', tag = 'qemu-nbd', tlsDir?: string): Promise<Endpoint> {
  const port = await freePort();
  const tls = tlsDir ? ['--object', `tls-creds-x509,id=tls0,endpoint=server,dir=${tlsDir}`, '--tls-creds', 'tls0'] : [];
  const args = [...tls, '-f', format, '-x', exportName, '-p', String(port), '-b', '127.0.0.1', '-t', '--persistent', '--shared=8', file];
  const server = startServer('qemu-nbd', args, path.join(logDir, `${tag}.log`));
  await waitForPort(server, tag, '127.0.0.1', port);
  return endpoint(tag, server, port, exportName, file);
}

/** nbdkit's file plugin, in the foreground, dying with us if we die hard; `tlsDir` as for qemu-nbd (--tls=require). */
export async function startNbdkit(file: string, logDir: string, exportName = 'bench', tag = 'nbdkit', tlsDir?: string): Promise<Endpoint> {
  const port = await freePort();
  const tls = tlsDir ? ['--tls=require', `--tls-certificates=${tlsDir}`, '--tls-verify-peer'] : [];
  const args = ['-f', '--exit-with-parent', ...tls, '-p', String(port), '-i', '127.0.0.1', '-e', exportName, 'file', file];
  const server = startServer('nbdkit', args, path.join(logDir, `${tag}.log`));
  await waitForPort(server, tag, '127.0.0.1', port);
  return endpoint(tag, server, port, exportName, file);
}
