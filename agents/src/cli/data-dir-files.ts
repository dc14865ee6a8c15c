import type Database from 'better-sqlite3';
import { createRequire } from 'node:module';
import { readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { ProblemError } from '@tandem/contract';
import { dataDirPaths, type AgentIdentity, type RunInfo } from '../data-dir.ts';

/*
 * The small state files of a data dir that the daemon writes and the CLI
 * reads: agent.json, run.json and the lock. Kept apart from agent.ts so admin
 * commands start without loading the daemon.
 */

/**
 * Exclusive lock on a data dir, held for the life of the agent (or of an
 * offline `check`). It is an SQLite database in exclusive locking mode, so
 * the kernel drops the lock when the process dies, even by `kill -9`.
 */
export class DataDirLock {
  private constructor(private readonly db: Database.Database) {}

  /** Takes the lock or throws `conflict`. Synchronous by design: it runs once, before anything is served. */
  static acquireSync(dataDir: string): DataDirLock {
    // better-sqlite3 is loaded here, not with the module: the admin commands that never lock start without it.
    const Sqlite = createRequire(import.meta.url)('better-sqlite3') as typeof Database;
    const db = new Sqlite(dataDirPaths(dataDir).lock);
    try {
      db.pragma('busy_timeout = 0');
      db.pragma('locking_mode = EXCLUSIVE');
      db.exec('BEGIN EXCLUSIVE; CREATE TABLE IF NOT EXISTS holder (pid INTEGER); DELETE FROM holder;');
      db.prepare('INSERT INTO holder (pid) VALUES (?)').run(process.pid);
      db.exec('COMMIT');
      return new DataDirLock(db);
    } catch (error) {
      db.close();
      if ((error as { code?: string }).code === 'SQLITE_BUSY') {
        throw new ProblemError('conflict', `another process (a running agent or a check) holds the data dir ${dataDir}`);
      }
      throw error;
    }
  }

  release(): void {
    if (this.db.open) this.db.close();
  }
}

/** Reads agent.json; a clear error when the dir was never initialized. */
export async function readIdentity(dataDir: string): Promise<AgentIdentity> {
  const file = dataDirPaths(dataDir).identity;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new ProblemError('not-found', `${dataDir} is not an agent data dir (no agent.json); run \`tandem-agent init\` first`);
    }
    throw error;
  }
  return JSON.parse(text) as AgentIdentity;
}

/** Reads run.json, or null when no agent announced itself there. */
export async function readRunInfo(dataDir: string): Promise<RunInfo | null> {
  try {
    return JSON.parse(await readFile(dataDirPaths(dataDir).runInfo, 'utf8')) as RunInfo;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

export async function writeRunInfo(dataDir: string, info: RunInfo): Promise<void> {
  const file = dataDirPaths(dataDir).runInfo;
  await writeFile(`${file}.tmp`, `${JSON.stringify(info, null, 2)}\n`);
  await rename(`${file}.tmp`, file);
}

export async function removeRunInfo(dataDir: string): Promise<void> {
  await unlink(dataDirPaths(dataDir).runInfo).catch(() => {});
}

