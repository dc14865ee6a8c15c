import fsp from 'node:fs/promises';
import path from 'node:path';
import { dataDirPaths, type AgentIdentity } from '../data-dir.ts';
import { Catalog } from './catalog.ts';
import { CheckpointError, readCheckpoint } from './checkpoint.ts';
import { extentFileName, extentsPerFile } from './extent-store.ts';
import { forEachJournalExtent } from './cdp-meta.ts';
import { Chunk, CHUNK_TRACKS, NO_EXTENT, type MetadataState } from './metadata.ts';
import { applyRecord, decodeSegment, listSegments, segmentName } from './wal.ts';

export interface CheckReport {
  clean: boolean;
  problems: string[];
  notes: string[];
  summary: {
    volumes: number;
    snapshots: number;
    usedExtents: number;
    sharedExtents: number;
    replayedRecords: number;
  };
}

/**
 * Verifies a stopped pool offline: loads the checkpoint, replays the WAL
 * (read only: nothing is written), then recomputes every refcount from the
 * VTTs and compares, checks that every referenced extent lies in an extent
 * file, and that the catalog and the metadata name the same volumes.
 */
export async function checkDataDir(dataDir: string): Promise<CheckReport> {
  const paths = dataDirPaths(dataDir);
  const problems: string[] = [];
  const notes: string[] = [];
  const summary = { volumes: 0, snapshots: 0, usedExtents: 0, sharedExtents: 0, replayedRecords: 0 };
  const report = () => ({ clean: problems.length === 0, problems, notes, summary });

  let identity: AgentIdentity;
  try {
    identity = JSON.parse(await fsp.readFile(paths.identity, 'utf8')) as AgentIdentity;
  } catch (error) {
    problems.push(`agent.json cannot be read: ${(error as Error).message}`);
    return report();
  }

  let state: MetadataState;
  let walGeneration: number;
  try {
    ({ state, walGeneration } = await readCheckpoint(paths.meta));
  } catch (error) {
    const reason = error instanceof CheckpointError ? error.message : (error as Error).message;
    problems.push(`the metadata checkpoint is unusable: ${reason}`);
    return report();
  }
  if (state.trackSize !== identity.trackSize) {
    problems.push(`checkpoint track size ${state.trackSize} differs from agent.json's ${identity.trackSize}`);
  }
  for (const generation of (await listSegments(paths.meta)).filter((g) => g >= walGeneration)) {
    const decoded = decodeSegment(await fsp.readFile(path.join(paths.meta, segmentName(generation))));
    try {
      for (const record of decoded.records) applyRecord(state, record);
    } catch (error) {
      problems.push(`WAL segment ${generation} does not replay: ${(error as Error).message}`);
      return report();
    }
    summary.replayedRecords += decoded.records.length;
    if (decoded.tornBytes > 0) {
      notes.push(`WAL segment ${generation} ends with ${decoded.tornBytes} bytes of an interrupted commit (ignored, as recovery does)`);
    }
  }

  // Recompute references from the VTTs.
  const chunkHolders = new Map<Chunk, number>();
  for (const volume of state.volumes.values()) {
    for (const [index, chunk] of volume.chunks) {
      chunkHolders.set(chunk, (chunkHolders.get(chunk) ?? 0) + 1);
      if (index * CHUNK_TRACKS >= volume.trackCount) problems.push(`volume ${volume.id} has a chunk past its end`);
    }
  }
  const counted = new Uint32Array(state.refcounts.length);
  let highest = -1;
  for (const [chunk, holders] of chunkHolders) {
    if (chunk.refs !== holders) problems.push(`a chunk is held by ${holders} volume(s) but records ${chunk.refs}`);
    let allocated = 0;
    for (let slot = 0; slot < CHUNK_TRACKS; slot++) {
      const extent = chunk.entries[slot];
      if (extent === NO_EXTENT) continue;
      allocated++;
      if (extent >= counted.length) {
        problems.push(`extent ${extent} is referenced but has no refcount`);
        continue;
      }
      counted[extent]++;
      highest = Math.max(highest, extent);
    }
    if (allocated !== chunk.allocated) problems.push(`a chunk counts ${chunk.allocated} allocated tracks but holds ${allocated}`);
  }
  // CDP journal entries hold extents too (do and undo by reference).
  forEachJournalExtent(state, (extent) => {
    if (extent >= counted.length) {
      problems.push(`extent ${extent} is held by a CDP journal but has no refcount`);
      return;
    }
    counted[extent]++;
    highest = Math.max(highest, extent);
  });
  let mismatches = 0;
  for (let extent = 0; extent < state.refcounts.length; extent++) {
    if (counted[extent] !== state.refcounts[extent]) {
      if (mismatches++ < 20) {
        const kind = counted[extent] === 0 ? 'leaked' : state.refcounts[extent] < counted[extent] ? 'owned more times than counted' : 'over-counted';
        problems.push(`extent ${extent}: refcount ${state.refcounts[extent]}, referenced ${counted[extent]} time(s) (${kind})`);
      }
    }
    if (counted[extent] > 0) summary.usedExtents++;
    if (counted[extent] > 1) summary.sharedExtents++;
  }
  if (mismatches > 20) problems.push(`… and ${mismatches - 20} more refcount mismatches`);

  // Every referenced extent must lie inside an extent file.
  if (highest >= 0) {
    const perFile = extentsPerFile(state.trackSize);
    const lastFile = Math.floor(highest / perFile);
    for (let index = 0; index <= lastFile; index++) {
      const file = path.join(paths.pool, extentFileName(index));
      const size = await fsp.stat(file).then((s) => s.size, () => -1);
      if (size < 0) problems.push(`extent file ${extentFileName(index)} is missing`);
    }
    const lastSize = await fsp.stat(path.join(paths.pool, extentFileName(lastFile))).then((s) => s.size, () => 0);
    // An extent first written in part ends the file early (the rest reads as zeroes), but it was written.
    if (lastSize <= (highest % perFile) * state.trackSize) {
      problems.push(`extent ${highest} is referenced but was never written (past the end of ${extentFileName(lastFile)})`);
    }
  }

  // Catalog and metadata must agree (the daemon repairs one-sided leftovers at start).
  const catalog = new Catalog(paths.catalog, { readonly: true });
  try {
    const rows = catalog.listVolumeRows();
    const ids = new Set(rows.map((r) => r.id));
    for (const row of rows) {
      const meta = state.volumes.get(row.id);
      if (!meta) notes.push(`catalog volume ${row.name} has no metadata yet (an interrupted create; removed at next start)`);
      else if (meta.sizeBytes !== row.sizeBytes) notes.push(`volume ${row.name}: catalog size differs (interrupted resize; repaired at next start)`);
      if (row.sourceId !== null && !ids.has(row.sourceId)) problems.push(`snapshot ${row.name} names a missing source ${row.sourceId}`);
      if (row.kind === 'snapshot') summary.snapshots++;
      else summary.volumes++;
    }
    for (const id of state.volumes.keys()) {
      if (!ids.has(id)) notes.push(`metadata volume ${id} has no catalog row (an interrupted create or delete; removed at next start)`);
    }
  } finally {
    catalog.close();
  }
  return report();
}
