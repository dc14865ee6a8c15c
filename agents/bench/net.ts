import net from 'node:net';
import type { Server } from './procs.ts';
import { tailLog } from './procs.ts';

/** A TCP port free right now on 127.0.0.1 (the kernel picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function tryConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits until `host:port` accepts TCP connections, or the server exits. */
export async function waitForPort(server: Server, name: string, host: string, port: number, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (server.child.exitCode !== null) {
      throw new Error(`${name} exited (code ${server.child.exitCode}) before listening:\n${tailLog(server.log)}`);
    }
    if (await tryConnect(host, port)) return;
    await sleep(50);
  }
  throw new Error(`${name} did not listen on ${host}:${port} within ${timeoutMs} ms:\n${tailLog(server.log)}`);
}

export { sleep };
