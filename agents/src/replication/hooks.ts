import type { Logger } from 'pino';
import type {
  FailbackOptions,
  FailbackPreflight,
  JournalPoint,
  LastVerify,
  PairInfo,
  PeerMethod,
  PeerParamsIn,
  PeerResult,
  RoundCommit,
  SessionAction,
  SessionActionOptions,
  SessionInfo,
  SessionState,
  VerifyReport,
  ProblemError,
} from '@tandem/contract';
import type { BlockDevice } from '../storage/block-device.ts';
import type { StorageEngine } from '../storage/engine.ts';
import type { CoordinatedOptions, ConsistencyGroupShipper, GroupEntry } from './async-groups.ts';
import type { CutCoordinator, CutParticipant } from './cut-coordinator.ts';
import type { ReplicationFaults } from './faults.ts';
import type { PeerLinkClient } from './link/peer-link.ts';
import type { PeerAnswer, PeerCall, PeerHandlerTable } from './link/peer-protocol.ts';
import type { PartPayload } from './parts.ts';
import type { MirrorMode, PairSource } from './pair-source.ts';
import type { PeerRegistry } from './peers.ts';
import type { SessionRole } from './role.ts';
import type { CopySetOnTheWire, CopySetRecord, HeldCopySet, SessionRecord, SessionStore } from './session-store.ts';
import type { CycleReport, ShippedEntry } from './shipping-source.ts';

/**
 * What the parts of the replication service (mirroring.ts, rounds.ts,
 * multi-primary.ts, target.ts, ...) use of it and of each other, as narrow
 * interfaces: every part takes a `Pick` of `ReplicationHooks` naming just
 * what it uses, and the service (service.ts) satisfies them structurally.
 * This module imports no part and not the service, so no part imports the
 * service back, types included (the no-circular rule of
 * .dependency-cruiser.cjs counts type-only imports in replication/).
 */

/** The lookups, links and state changes every part shares (service.ts). */
export interface ReplicationCore {
  readonly engine: StorageEngine;
  readonly peers: PeerRegistry;
  readonly agentId: string;
  readonly site: string;
  readonly logger: Logger;
  readonly faults: ReplicationFaults;
  readonly store: SessionStore;
  readonly sessions: Map<string, SessionRecord>;
  readonly pairs: Map<string, HeldCopySet>;
  readonly stateOrigins: Map<string, { site: string; at: string }>;
  readonly recovered: Promise<void>;
  session(nameOrId: string): SessionRecord;
  pair(id: string): HeldCopySet;
  pairsOf(session: SessionRecord): HeldCopySet[];
  role(session: SessionRecord): SessionRole;
  link(session: SessionRecord): PeerLinkClient;
  pairLink(session: SessionRecord, pair: HeldCopySet): PeerLinkClient;
  sourceOf(pair: HeldCopySet): PairSource | undefined;
  refreshTaps(): void;
  setState(session: SessionRecord, state: SessionState, changes?: Partial<SessionRecord>, notify?: boolean, from?: string): void;
  pushState(session: SessionRecord): Promise<void>;
  toLocalIso(agentId: string, time: string | null): string | null;
  applyRemoteState(record: SessionRecord, from: string): void;
}

/** The service's commands the peer-link requests and the parts reach (delegations to the parts). */
export interface ReplicationCommands {
  info(session: SessionRecord): SessionInfo;
  preflight(sessionName: string, options: { verifyCodes: boolean; fullCompare: boolean }): Promise<FailbackPreflight>;
  verify(sessionName: string, options?: { forwarded?: boolean }): Promise<VerifyReport>;
  shipNow(sessionName: string): Promise<CycleReport>;
}

/** Session actions (session-actions.ts). */
export interface ActionsPart {
  execute(session: SessionRecord, action: SessionAction, options: SessionActionOptions): Promise<void>;
  recoverHere(session: SessionRecord, options?: SessionActionOptions, given?: RoundCommit | null): Promise<void>;
  executor(session: SessionRecord, action: SessionAction): string | null;
  terminateHere(session: SessionRecord): Promise<void>;
}

/** Mirroring at the source (mirroring.ts), as the other parts use it. */
export interface MirroringPart {
  readonly sources: Map<string, PairSource>;
  readonly shippers: Map<string, ConsistencyGroupShipper>;
  ensureSource(session: SessionRecord, pair: HeldCopySet): PairSource;
  dropSources(session: SessionRecord): void;
  dropBitmaps(session: SessionRecord): Promise<void>;
  suspended(session: SessionRecord): Promise<void>;
  suspendForError(session: SessionRecord, pair: PairSource, error: Error): Promise<void>;
  suspendSession(session: SessionRecord, detail: string, error: Error): Promise<void>;
  checkPrepared(session: SessionRecord): void;
  fenceTargets(session: SessionRecord): Promise<string>;
  runOf(session: SessionRecord): string;
  runMirroring(session: SessionRecord, fenced?: string): Promise<void>;
  stopSource(session: SessionRecord, reason: string | null): Promise<void>;
  repairTracks(pair: HeldCopySet, tracks: number[]): Promise<boolean>;
}

/** The rounds of async sessions (rounds.ts). */
export interface RoundsPart {
  readonly heard: Map<string, number>;
  start(session: SessionRecord): Promise<void>;
  remoteParticipant(session: SessionRecord, agentId: string): CutParticipant;
  stop(session: SessionRecord, reason: string | null): Promise<void>;
  checkPrepared(session: SessionRecord): void;
  committedTime(session: SessionRecord): number | undefined;
  coordinatorOf(session: SessionRecord): CutCoordinator | undefined;
  coordinatedOptions(session: SessionRecord): CoordinatedOptions;
  readonly peerHandlers: PeerHandlerTable<`mp.${'hold' | 'cut' | 'release' | 'commit'}` | 'cg.stage'>;
}

type FailbackPlanOptions = Pick<FailbackOptions, 'verifyCodes' | 'fullCompare'>;

/** Multi-primary sessions (multi-primary.ts). */
export interface MultiPrimaryPart {
  stageAtTargets(
    session: SessionRecord,
    part: { run: string; epoch: string; from: string; round: number; time: number; entries: GroupEntry[] },
    payload: PartPayload,
  ): Promise<void>;
  askMembers<M extends PeerMethod>(
    session: SessionRecord,
    method: M,
    params: Omit<PeerParamsIn<M>, 'session'>,
    timeoutMs: number,
  ): Promise<Array<{ agent: string; result: PeerResult<M> }>>;
  links(session: SessionRecord): PeerLinkClient[];
  memberCopySets(session: SessionRecord): CopySetRecord[];
  pairAgent(session: SessionRecord, pair: HeldCopySet): string;
  otherAgents(session: SessionRecord): string[];
  memberAgents(session: SessionRecord): string[];
  siteOf(agentId: string): string;
  terminateMembers(session: SessionRecord): Promise<void>;
  memberPairInfos(session: SessionRecord): PairInfo[];
  primarySiteOf(pair: CopySetRecord): string | undefined;
  memberSession(params: { session: string }): SessionRecord;
  readonly peerHandlers: PeerHandlerTable<`mp.${'join' | 'secondary-pair' | 'run' | 'stop'}`>;
}

/** Copy sets joining their session by an initial copy (joining.ts). */
export interface JoiningPart {
  isJoining(pair: HeldCopySet): boolean;
  initialCopyPending(pair: HeldCopySet): boolean;
  initialCopiesStart(session: SessionRecord): void;
  joinedAtSource(pairId: string): void;
  modeOf(session: SessionRecord): MirrorMode;
  settle(session: SessionRecord): boolean;
  resume(session: SessionRecord): Set<string>;
  expect(record: CopySetRecord): void;
  forget(id: string): void;
  onlyJoining(session: SessionRecord): boolean;
  anywhere(session: SessionRecord): boolean;
}

/** Snapshot-shipping sessions at their source (shipping-sessions.ts). */
export interface ShippingPart {
  run(session: SessionRecord, run: string): void;
  intervalOf(session: SessionRecord): number;
  applyInterval(session: SessionRecord, intervalMs: number): void;
  stop(session: SessionRecord): Promise<void>;
  drop(session: SessionRecord): void;
}

/** Copy sets and sessions made and removed (copy-sets.ts) and added to running sessions (running-copy-sets.ts). */
export interface CopySetsPart {
  forgetPair(pair: HeldCopySet): void;
  adoptSession(record: SessionRecord): void;
  adoptPair(incoming: CopySetOnTheWire): HeldCopySet;
}
export interface RunningCopySetsPart {
  isRemoving(pair: HeldCopySet): boolean;
  add(session: SessionRecord, pair: HeldCopySet): Promise<HeldCopySet>;
  remove(session: SessionRecord, record: CopySetRecord): Promise<void>;
  attach(sessionId: string, record: CopySetOnTheWire): Promise<void>;
  readonly peerHandlers: PeerHandlerTable<'mp.add' | 'mp.remove' | 'mp.pair-removed'>;
}

/** Broken copy sets (copy-set-volumes.ts). */
export interface CopySetVolumesPart {
  isBroken(pair: HeldCopySet): boolean;
  brokenOf(session: SessionRecord): HeldCopySet[];
  reasonOf(pair: HeldCopySet): string | null;
  refusal(session: SessionRecord): ProblemError | null;
  refuseIfBroken(session: SessionRecord): void;
  learn(error: unknown): boolean;
  markBroken(pair: HeldCopySet, reason: string, options?: { suspend?: boolean; tell?: boolean }): void;
}

/** Failback and the roll-forward of a recover (session-failback.ts) and online verify (session-verify.ts). */
export interface FailbackPart {
  failbackHere(session: SessionRecord, options: FailbackPlanOptions): Promise<void>;
  becomeTarget(session: SessionRecord, direction: SessionRecord['direction']): Promise<void>;
  rollForward(session: SessionRecord, given: RoundCommit | null): Promise<RoundCommit | null>;
  recoverMembers(session: SessionRecord, commit: RoundCommit | null): Promise<void>;
  readonly peerHandlers: PeerHandlerTable<'mp.recover' | 'mp.verify' | 'mp.last-commit' | 'mp.failback-plan'>;
}
export interface VerifierPart {
  verify(sessionName: string, options?: { forwarded?: boolean; trigger?: LastVerify['trigger'] }): Promise<VerifyReport>;
}

/** The secondary's appliers: async rounds (group-applier.ts) and shipping cycles (shipping-target.ts). */
export interface ApplierPart {
  onMarker:
    | ((session: string, from: string, marker: { method: string; params: Record<string, unknown> }, payload: Buffer | null) => Promise<void>)
    | null;
  stagePart(
    part: { session: string; epoch: string; from: string; round: number; time: number; entries: GroupEntry[]; piece?: number; last?: boolean },
    payload: Buffer | null,
  ): Promise<void>;
  commit(session: string, epoch: string, through: number, time: number): Promise<void>;
  lastCommit(session: string): Promise<{ epoch: string; through: number; time: number } | null>;
  dropParts(session: string, from: string): Promise<void>;
  discardParts(session: string): Promise<void>;
  /** Holds the session's applier queue (no round applies) until the returned release is called. */
  freeze(session: string): Promise<() => void>;
}

/** The secondary's journals (journal-feed.ts): where a copy set's replicated changes go. */
export interface JournalsPart {
  replicaDevice(pair: HeldCopySet): BlockDevice;
  /** The source started a new mirroring run here: a bookmark of the replica before its resync; no points until duplex. */
  runFenced(session: SessionRecord): Promise<void>;
  /** A recover's point is valid here (refused before anything changes otherwise). */
  checkRecover(session: SessionRecord, request: SessionActionOptions): void;
  /** A recover here ends the session's journal, first rolling the replica back to the point named (tracks rolled go to `changed`). */
  recoverAt(
    session: SessionRecord,
    request: SessionActionOptions,
    changed: (volume: string, tracks: number[]) => Promise<void>,
  ): Promise<{ point: JournalPoint | null; rolledTracks: number } | null>;
}
export interface ReceiverPart {
  begin(session: string, epoch: string, cycle: number): Promise<void>;
  chunk(session: string, epoch: string, cycle: number, entries: ShippedEntry[], payload: Buffer | null): Promise<void>;
  commit(session: string, epoch: string, cycle: number, time: number): Promise<void>;
  discard(session: string): Promise<void>;
  /** Holds the session's cycle commits until the returned release is called. */
  freeze(session: string): Promise<() => void>;
}

/** The peer-link request handlers (target.ts), as flash mirroring uses them. */
export interface TargetPart {
  flashMirror: { handle: (call: PeerCall<'flash.mirror'>) => Promise<PeerAnswer<'flash.mirror'>> } | null;
  readonly arrivals: { settlePairs(pairs: string[]): Promise<void> };
}

/** The parts, as each other sees them. */
export interface ReplicationParts {
  readonly actions: ActionsPart;
  readonly mirroring: MirroringPart;
  readonly rounds: RoundsPart;
  readonly multiPrimary: MultiPrimaryPart;
  readonly joining: JoiningPart;
  readonly shipping: ShippingPart;
  readonly copySets: CopySetsPart;
  readonly running: RunningCopySetsPart;
  readonly copySetVolumes: CopySetVolumesPart;
  readonly failback: FailbackPart;
  readonly verifier: VerifierPart;
  readonly applier: ApplierPart;
  readonly receiver: ReceiverPart;
  readonly target: TargetPart;
  readonly journals: JournalsPart;
}

/** Everything a part may ask for; each part takes a `Pick` of it. */
export type ReplicationHooks = ReplicationCore & ReplicationCommands & ReplicationParts;
