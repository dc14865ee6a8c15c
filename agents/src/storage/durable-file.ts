import fs from 'node:fs/promises';
import path from 'node:path';

/** fsync of a directory, so a rename or unlink in it survives a crash. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Replaces `file` with `parts` durably and atomically: a temp file written
 * and fdatasync'd, renamed over the target, the directory fsync'd. After a
 * crash the file holds either all of the old or all of the new content.
 */
export async function writeFileDurably(file: string, parts: Buffer | Buffer[]): Promise<void> {
  const temp = `${file}.tmp`;
  const handle = await fs.open(temp, 'w', 0o600);
  try {
    await handle.writev(Array.isArray(parts) ? parts : [parts]);
    await handle.datasync();
  } finally {
    await handle.close();
  }
  await fs.rename(temp, file);
  await syncDirectory(path.dirname(file));
}
