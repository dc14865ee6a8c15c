import { randomUUID } from 'node:crypto';
import fsp from 'node:fs/promises';
import { ProblemError } from '@tandem/contract';
import { dataDirPaths, type AgentIdentity } from '../data-dir.ts';
import { Catalog } from './catalog.ts';
import { serializeCheckpoint, writeCheckpoint } from './checkpoint.ts';
import { MetadataState } from './metadata.ts';

export const DEFAULT_TRACK_SIZE = 64 * 1024;

export function validTrackSize(trackSize: number): boolean {
  return Number.isInteger(trackSize) && trackSize >= 4096 && trackSize <= 1024 * 1024 && (trackSize & (trackSize - 1)) === 0;
}

/**
 * Lays out a new data dir: identity, pool and meta dirs, an empty
 * checkpoint and the catalog. TLS material is added by the caller.
 */
export async function initDataDir(
  dataDir: string,
  options: { site: string; trackSize?: number },
): Promise<AgentIdentity> {
  const trackSize = options.trackSize ?? DEFAULT_TRACK_SIZE;
  if (!validTrackSize(trackSize)) {
    throw new ProblemError('invalid-size', `track size ${trackSize} is not a power of two from 4 KiB to 1 MiB`);
  }
  const paths = dataDirPaths(dataDir);
  await fsp.mkdir(paths.root, { recursive: true, mode: 0o700 });
  const exists = await fsp
    .access(paths.identity)
    .then(() => true)
    .catch(() => false);
  if (exists) throw new ProblemError('already-exists', `${paths.root} already holds an agent (agent.json exists)`);
  await fsp.mkdir(paths.pool, { recursive: true, mode: 0o700 });
  await fsp.mkdir(paths.meta, { recursive: true, mode: 0o700 });
  await fsp.mkdir(paths.tls, { recursive: true, mode: 0o700 });
  await writeCheckpoint(paths.meta, serializeCheckpoint(new MetadataState(trackSize), 1));
  new Catalog(paths.catalog).close();
  const identity: AgentIdentity = {
    formatVersion: 1,
    site: options.site,
    agentId: randomUUID(),
    trackSize,
    createdAt: new Date().toISOString(),
  };
  // agent.json last: its presence means the data dir is complete.
  await fsp.writeFile(paths.identity, `${JSON.stringify(identity, null, 2)}\n`, { mode: 0o600 });
  return identity;
}
