import {
  ProblemError,
  type EstablishFlashRequest,
  type FlashMirrorHandling,
  type FlashOptions,
  type FlashRefreshRequest,
  type FlashReverseRequest,
  type FlashSessionInfo,
  type FlashTrackMap,
  type FlashUpdateRequest,
  type FlashWithdrawRequest,
  type TrackMapQuery,
} from '@tandem/contract';
import type { Logger } from 'pino';
import type { StorageEngine } from '../storage/engine.ts';
import type { TapSource, WriteTap } from '../replication/splitter.ts';

/** A run of tracks [start, start+count). */
export interface TrackRange {
  start: number;
  count: number;
}

/** One pair's part of a flash change the mirror hooks are told about. */
export interface FlashMirrorPairChange {
  /** Pair id (FlashPairInfo.id). */
  id: string;
  source: string;
  target: string;
  remoteTarget: string | null;
  /** The volume whose content changes: the target (establish, refresh) or the source (reverse). */
  changed: string;
  /** The volume whose image `changed` receives. */
  from: string;
  /** Tracks of `changed` whose content may change, or 'all'. */
  tracks: TrackRange[] | 'all';
}

/** A point-in-time change of a flash session, as the mirror hooks see it. */
export interface FlashMirrorChange {
  kind: 'establish' | 'refresh' | 'reverse';
  session: string;
  options: FlashOptions;
  coordinated: boolean;
  pairs: FlashMirrorPairChange[];
  /** Date.now() by which the held host writes must be released; hooks should finish well before. */
  deadline: number;
}

/**
 * What mirroring plugs into flash copy. `beforeTargetChange` runs while the
 * host writes of every source and target of the session are held (queued),
 * after every pair was validated and BEFORE the metadata change that gives
 * the changed volumes their new content is logged, so anything the hook
 * makes durable (out-of-sync marks) is durable no later than the change.
 * It answers per pair (same order) how the mirror handles the change. A
 * throw aborts the change: nothing is changed, the writes are released and
 * the caller sees the hook's problem. `afterTargetChange` runs once the
 * change is durable (writes released). `withdrawn` runs after pairs were
 * withdrawn (relationships gone; the targets keep their images).
 */
export interface FlashMirrorHooks {
  beforeTargetChange(change: FlashMirrorChange): Promise<FlashMirrorHandling[]>;
  afterTargetChange?(change: FlashMirrorChange): Promise<void> | void;
  withdrawn?(session: string, pairs: Array<{ id: string; source: string; target: string }>): Promise<void> | void;
}

/** Hooks of an agent without mirror interplay: every pair is `none`. */
export const noMirrorHooks: FlashMirrorHooks = {
  beforeTargetChange: async (change) => change.pairs.map(() => 'none' as const),
};

export interface FlashServiceOptions {
  engine: StorageEngine;
  logger: Logger;
  hooks?: FlashMirrorHooks;
}

/**
 * Flash copy sessions of one agent: point-in-time relationships source ->
 * target inside the agent's pool. See PROTOCOL.md "Flash copy".
 */
export class FlashService implements TapSource {
  private readonly engine: StorageEngine;
  private readonly logger: Logger;
  private hooks: FlashMirrorHooks;

  constructor(options: FlashServiceOptions) {
    this.engine = options.engine;
    this.logger = options.logger;
    this.hooks = options.hooks ?? noMirrorHooks;
  }

  /** Installs the mirror interplay (replaces the no-op default). */
  setMirrorHooks(hooks: FlashMirrorHooks): void {
    this.hooks = hooks;
  }

  /** Resumes persisted sessions (change recording, background copy). */
  start(): void {}

  /** Stops background copies (they resume at the next start). */
  async close(): Promise<void> {}

  async establish(_request: EstablishFlashRequest): Promise<FlashSessionInfo> {
    throw new ProblemError('not-supported', 'flash copy is not available yet');
  }

  list(): FlashSessionInfo[] {
    return [];
  }

  get(name: string): FlashSessionInfo {
    throw new ProblemError('not-found', `there is no flash session named ${name}`);
  }

  async refresh(name: string, _request: FlashRefreshRequest): Promise<FlashSessionInfo> {
    return this.get(name);
  }

  async reverse(name: string, _request: FlashReverseRequest): Promise<FlashSessionInfo> {
    return this.get(name);
  }

  async withdraw(name: string, _request: FlashWithdrawRequest): Promise<FlashSessionInfo> {
    return this.get(name);
  }

  async update(name: string, _request: FlashUpdateRequest): Promise<FlashSessionInfo> {
    return this.get(name);
  }

  /** Removes a withdrawn session's record; an active session is refused with `invalid-state`. */
  async remove(name: string): Promise<void> {
    this.get(name);
  }

  trackMap(session: string, _pairId: string, _query: TrackMapQuery): FlashTrackMap {
    throw new ProblemError('not-found', `there is no flash session named ${session}`);
  }

  /** Write taps of a volume (write-inhibited targets), order 10. */
  tapsFor(_volume: string): WriteTap[] {
    return [];
  }
}
