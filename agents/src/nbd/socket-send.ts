import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import path from 'node:path';
import { agentPackageDir } from '../package-dir.ts';

/**
 * Large READ replies written to the socket by a thread-pool thread, not the
 * event loop: sendAll in the native addon (agents/native/nowait-io.c, which
 * says why). Without the addon (not built, an addon built before it had
 * sendAll, another OS) or with TANDEM_OFFLOADED_SENDS=0, `offloadedSend` is
 * null and replies go through `socket.write` as before: the pure-JS path.
 */
interface SendAddon {
  sendAll(fd: number, buffer: Buffer, offset: number, length: number, waitMs: number): Promise<number>;
}

function load(): SendAddon | null {
  if (process.env.TANDEM_OFFLOADED_SENDS === '0' || process.platform !== 'linux') return null;
  try {
    const require = createRequire(import.meta.url);
    const addon = require(path.join(agentPackageDir(), 'native/build/Release/tandem_nowait_io.node')) as Partial<SendAddon>;
    return typeof addon.sendAll === 'function' ? (addon as SendAddon) : null;
  } catch {
    return null;
  }
}

const addon = load();

/**
 * How long one offloaded send waits for a full socket to take more before
 * it hands the rest back (the caller writes it with `socket.write`): a
 * client that stops reading holds a thread-pool thread at most this long.
 */
const SEND_WAIT_MS = 20;

/**
 * At most this many sends wait in the thread pool at once (over all
 * connections); more go through `socket.write`, so slow clients cannot
 * fill the pool that reads and writes the disk.
 */
const MAX_OFFLOADED_SENDS = 4;
let offloaded = 0;
let started = 0;

/**
 * The file descriptor of a plaintext TCP or Unix socket that an offloaded
 * send may write to now, or -1: TLS sockets (the bytes are encrypted in
 * JS), sockets without a descriptor, closed ones, or ones with writes still
 * queued in the stream (bytes would overtake them).
 */
export function offloadableFd(socket: Socket): number {
  if (addon === null || offloaded >= MAX_OFFLOADED_SENDS) return -1;
  if ((socket as Socket & { encrypted?: boolean }).encrypted || socket.destroyed || !socket.writable) return -1;
  if (socket.writableLength !== 0 || socket.writableCorked !== 0) return -1;
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : -1;
}

/**
 * Sends `data` on the socket whose descriptor offloadableFd gave, from a
 * thread-pool thread; settles with the bytes sent (fewer than data.length
 * when the socket stayed full: the caller sends the rest) or -errno (the
 * stream is then broken: part of the reply may be on the wire). Nothing
 * else may be written to the socket, and `data` must not change, until it
 * settles. Never rejects.
 */
export async function sendOffloaded(fd: number, data: Buffer): Promise<number> {
  offloaded++;
  started++;
  try {
    return await addon!.sendAll(fd, data, 0, data.length, SEND_WAIT_MS);
  } catch {
    return 0; // the addon refused the call: nothing was sent
  } finally {
    offloaded--;
  }
}

/** Whether large replies can leave through the thread pool (for logs and benchmarks). */
export const offloadedSendsAvailable = addon !== null;

/** How many sends this process has handed to the thread pool so far (tests). */
export function offloadedSendCount(): number {
  return started;
}
