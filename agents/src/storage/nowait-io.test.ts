import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { chunkedWrite, nowaitRead, nowaitReadsAvailable } from './nowait-io.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-nowait-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Drops one file from the page cache (POSIX_FADV_DONTNEED after fdatasync), as bench:nbd's cold-read leg does. */
function dropFromCache(file: string): void {
  execFileSync('dd', ['if=/dev/null', `of=${file}`, 'oflag=nocache', 'conv=notrunc,fdatasync', 'count=0', 'status=none']);
}

describe.skipIf(!nowaitReadsAvailable)('nowait reads (native addon)', () => {
  it('reads cached data at once, reads nothing that would wait for the disk, and zero-fills past the end', () => {
    const file = path.join(dir, 'data');
    const content = Buffer.alloc(1024 * 1024, 0x6b);
    fs.writeFileSync(file, content);
    const fd = fs.openSync(file, 'r');
    try {
      const target = Buffer.alloc(256 * 1024);
      expect(nowaitRead!(fd, target, 0)).toBe(target.length);
      expect(target.equals(content.subarray(0, target.length))).toBe(true);

      dropFromCache(file);
      const cold = Buffer.alloc(256 * 1024);
      expect(nowaitRead!(fd, cold, 512 * 1024)).toBeLessThan(cold.length);

      const tail = Buffer.alloc(8192, 0xff);
      fs.readSync(fd, Buffer.alloc(4096), 0, 4096, content.length - 4096); // cache the last page
      expect(nowaitRead!(fd, tail, content.length - 4096)).toBe(tail.length);
      expect(tail.subarray(0, 4096).every((b) => b === 0x6b)).toBe(true);
      expect(tail.subarray(4096).every((b) => b === 0)).toBe(true);
    } finally {
      fs.closeSync(fd);
    }
  });
});

describe.skipIf(chunkedWrite === null)('chunked writes (native addon)', () => {
  it('writes every byte at its position across chunk boundaries, leaving the rest of the file alone', async () => {
    const file = path.join(dir, 'chunked');
    fs.writeFileSync(file, Buffer.alloc(1024 * 1024, 0x11));
    const data = Buffer.alloc(300 * 1024 + 512);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 12)) & 0xff;
    const fd = fs.openSync(file, 'r+');
    try {
      // From 4 KiB past a 128 KiB boundary over two more of them, to past the end of the file.
      const position = 900 * 1024;
      expect(await chunkedWrite!(fd, data, position, 128 * 1024)).toBe(data.length);
      const content = fs.readFileSync(file);
      expect(content.length).toBe(position + data.length);
      expect(content.subarray(position).equals(data)).toBe(true);
      expect(content.subarray(0, position).every((b) => b === 0x11)).toBe(true);
    } finally {
      fs.closeSync(fd);
    }
  });

  it('answers -errno when the write fails', async () => {
    const file = path.join(dir, 'read-only');
    fs.writeFileSync(file, Buffer.alloc(4096));
    const fd = fs.openSync(file, 'r');
    try {
      expect(await chunkedWrite!(fd, Buffer.alloc(256 * 1024), 0, 128 * 1024)).toBe(-os.constants.errno.EBADF);
    } finally {
      fs.closeSync(fd);
    }
  });
});
