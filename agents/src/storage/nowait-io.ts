import { createRequire } from 'node:module';
import path from 'node:path';
import { agentPackageDir } from '../package-dir.ts';

/**
 * Reads that never wait for the disk: preadv2(RWF_NOWAIT) from the small
 * native addon in agents/native (built by scripts/setup.sh; see its source
 * for why). Without the addon (not built, another OS, or
 * TANDEM_NOWAIT_IO=0) `nowaitRead` is null and every read goes through the
 * thread pool as before: the pure-JS fallback.
 */
interface NowaitAddon {
  preadNowait(fd: number, buffer: Buffer, offset: number, length: number, position: number): number;
  /** Older builds of the addon lack it. */
  pwriteChunked?(fd: number, buffer: Buffer, offset: number, length: number, position: number, chunk: number): Promise<number>;
}

function load(): NowaitAddon | null {
  if (process.env.TANDEM_NOWAIT_IO === '0' || process.platform !== 'linux') return null;
  const require = createRequire(import.meta.url);
  try {
    const file = path.join(agentPackageDir(), 'native/build/Release/tandem_nowait_io.node');
    const addon = require(file) as NowaitAddon;
    return typeof addon.preadNowait === 'function' ? addon : null;
  } catch {
    return null;
  }
}

const addon = load();

/**
 * Reads what the page cache holds of [position, position + target.length)
 * into target, from its start, without waiting for the disk: returns the
 * bytes read (fewer, down to 0, when the rest is not cached or the read
 * failed: the caller reads the rest through the thread pool, which reports
 * any error; zeroes fill whatever lies past the end of the file, which
 * counts as read). Null without the addon.
 */
export const nowaitRead: ((fd: number, target: Buffer, position: number) => number) | null = addon
  ? (fd, target, position) => {
      let done = 0;
      while (done < target.length) {
        const result = addon.preadNowait(fd, target, done, target.length - done, position + done);
        if (result < 0) return done;
        if (result === 0) {
          target.fill(0, done);
          return target.length;
        }
        done += result;
      }
      return done;
    }
  : null;

/**
 * Writes all of `data` at `position` with one thread-pool round trip, as
 * pwrite calls that never cross a multiple of `chunk` bytes in the file (see
 * pwriteChunked in agents/native/nowait-io.c: large page-cache folios make
 * every later small write into them slow). Settles with the bytes written
 * (all of them) or -errno. Null without the addon (or an addon built
 * before it had this function); TANDEM_CHUNKED_WRITES=0 turns it off.
 */
export const chunkedWrite: ((fd: number, data: Buffer, position: number, chunk: number) => Promise<number>) | null =
  addon && typeof addon.pwriteChunked === 'function' && process.env.TANDEM_CHUNKED_WRITES !== '0'
    ? (fd, data, position, chunk) => addon.pwriteChunked!(fd, data, 0, data.length, position, chunk)
    : null;

/** Whether reads can skip the thread pool (for logs and benchmarks). */
export const nowaitReadsAvailable = addon !== null;
