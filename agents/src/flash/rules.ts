import { ProblemError, type EstablishFlashRequest, type VolumeDependent } from '@tandem/contract';
import type { StorageEngine } from '../storage/engine.ts';
import type { FlashSessionRecord } from './store.ts';

/**
 * Checks the pairs of an establish against the volumes and the live
 * relationships: same size, existing volumes, a target in at most one live
 * relationship, no volume both source and target (no cascades).
 */
export function validatePairs(engine: StorageEngine, request: EstablishFlashRequest, active: FlashSessionRecord[]): void {
  const sources = new Set(request.pairs.map((pair) => pair.source));
  const targets = new Set<string>();
  for (const pair of request.pairs) {
    const source = engine.getVolume(pair.source);
    const target = engine.getVolume(pair.target);
    if (pair.source === pair.target) throw new ProblemError('conflict', `${pair.source} cannot be flashed onto itself`);
    if (source.sizeBytes !== target.sizeBytes) {
      throw new ProblemError('invalid-size', `${pair.source} (${source.sizeBytes} bytes) and ${pair.target} (${target.sizeBytes} bytes) differ in size`);
    }
    if (target.readOnly) throw new ProblemError('read-only', `${pair.target} is read-only and cannot be a flash copy target`);
    if (targets.has(pair.target)) throw new ProblemError('conflict', `${pair.target} is the target of two pairs`);
    targets.add(pair.target);
    if (sources.has(pair.target)) throw new ProblemError('conflict', `${pair.target} is both a source and a target of this session`);
    if (request.coordinated && !pair.remoteTarget) {
      throw new ProblemError('bad-request', `a coordinated session needs remoteTarget for ${pair.source} -> ${pair.target}`);
    }
    for (const other of active) {
      for (const existing of other.pairs) {
        if (existing.target === pair.target || existing.source === pair.target) {
          throw new ProblemError('volume-busy', `${pair.target} is already in flash session ${other.name}`);
        }
        if (existing.target === pair.source) {
          throw new ProblemError('volume-busy', `${pair.source} is the target of flash session ${other.name}`);
        }
      }
    }
  }
}

/** What keeps a volume from being deleted or resized: the live (not withdrawn) relationships it is in. */
export function volumeDependents(active: FlashSessionRecord[], name: string): VolumeDependent[] {
  const found: VolumeDependent[] = [];
  for (const record of active) {
    for (const pair of record.pairs) {
      if (pair.source !== name && pair.target !== name) continue;
      found.push({
        kind: 'flash-copy',
        session: record.name,
        sessionState: record.state,
        role: pair.source === name ? 'source' : 'target',
        step: `withdraw flash copy session ${record.name}`,
        action: `tandem-agent flash withdraw ${record.name}`,
      });
      break;
    }
  }
  return found;
}
