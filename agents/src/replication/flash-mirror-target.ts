import { ProblemError } from '@tandem/contract';
import type { FlashService } from '../flash/service.ts';
import { primaryOf, secondaryOf, type PerformParams } from './flash-mirror-volumes.ts';
import { parsePeerRequest, type PeerAnswer, type PeerCall } from './link/peer-protocol.ts';
import { problemMessage } from './pair-source.ts';
import type { ReplicationHooks } from './hooks.ts';
import type { HeldCopySet } from './session-store.ts';
import { localVolumeName } from './copy-set-volumes.ts';

/** What flash-mirror-target uses of the service and the other parts (hooks.ts). */
export type FlashMirrorTargetHooks = Pick<
  ReplicationHooks,
  'engine' | 'faults' | 'pair' | 'pairs' | 'role' | 'session' | 'sourceOf' | 'target'
>;

/**
 * The secondary's side of flash copy of mirrored volumes: the `flash.mirror`
 * peer request (see flash-mirror.ts and PROTOCOL.md). It checks that the
 * named copy sets are mirrored here from the requesting primary and duplex,
 * then has this site's flash service perform the same change; it is the only
 * way a flash may change a volume that is the secondary of a mirroring
 * session (`ordered`).
 */
export class FlashMirrorTarget {
  /** Volumes a `flash.mirror` from the primary is changing right now. */
  readonly ordered = new Set<string>();
  /** Requests by token (running, done or cancelled before they arrived). */
  private readonly tokens = new Map<string, Promise<boolean> | 'cancelled'>();

  constructor(
    private readonly service: FlashMirrorTargetHooks,
    private readonly flash: FlashService,
  ) {}

  private event(severity: 'info' | 'warning', subject: string, message: string): void {
    this.service.engine.catalog.recordEvent('flash.mirror', severity, subject, message);
  }

  handle = async (call: PeerCall<'flash.mirror'>): Promise<PeerAnswer<'flash.mirror'>> => {
    const params = call.params;
    const op = params.op;
    if (this.service.faults.loseFlashMirror.has(op)) throw new ProblemError('link-down', `test fault: flash.mirror ${op} lost`);
    const token = params.token;
    if (params.op === 'cancel') {
      const known = this.tokens.get(token);
      if (known === undefined) {
        this.remember(token, 'cancelled');
        return { result: { performed: false } };
      }
      if (known === 'cancelled') return { result: { performed: false } };
      // Also the outcome of a multi-primary stream marker, which the primary asks for once its round is committed.
      return { result: await known.then((performed) => ({ performed }), (error: unknown) => ({ performed: false, why: problemMessage(error) })) };
    }
    if (params.op === 'withdraw') {
      const session = params.session;
      let exists = true;
      try {
        this.flash.get(session);
      } catch {
        exists = false;
      }
      if (exists) await this.flash.withdraw(session, { finishCopy: false });
      return { result: { withdrawn: exists } };
    }
    if (params.op === 'sync-point') return { result: {} }; // carried in an async stream: every earlier group is applied
    if (this.tokens.get(token) === 'cancelled') throw new ProblemError('invalid-state', 'this flash.mirror was cancelled by the primary');
    const running = this.perform(call.peerAgentId, params, call.payload);
    this.remember(token, running);
    await running;
    return { result: { performed: true } };
  };

  /**
   * A `flash.mirror` marker of a multi-primary part, run by the group
   * applier at its place in a committed round (`from`: the primary agent
   * that cut the part). Its outcome is kept by token like a request's; the
   * primary asks for it with `cancel` once the round is committed. Its
   * parameters are parsed like a request's (peer protocol).
   */
  runMarker = async (from: string, marker: { method: string; params: Record<string, unknown> }, payload: Buffer | null): Promise<void> => {
    if (marker.method !== 'flash.mirror') throw new ProblemError('bad-request', `a stream marker carries flash.mirror, not ${marker.method}`);
    const op = marker.params.op;
    if (op !== 'perform' && op !== 'sync-point') throw new ProblemError('bad-request', `a stream marker carries perform or sync-point, not ${String(op)}`);
    const call = parsePeerRequest({ method: marker.method, params: marker.params, payload, peerAgentId: from }) as PeerCall<'flash.mirror'>;
    await this.handle(call);
  };

  private remember(token: string, value: Promise<boolean> | 'cancelled'): void {
    this.tokens.set(token, value);
    if (this.tokens.size > 1024) this.tokens.delete(this.tokens.keys().next().value!);
  }

  /** The secondary volume of a duplex copy set the requesting primary mirrors here, or a refusal. */
  private secondaryVolume(pairId: string, from: string): { volume: string; pair: HeldCopySet } {
    const pair = this.service.pair(pairId);
    const session = this.service.session(pair.sessionId);
    // Mirrored here from the agent holding its other volume: its H1 volume's (in a multi-primary session, perhaps not
    // the control agent) H1->H2, its H2 volume's after a failback.
    const sender = session.direction === 'h1-h2' ? pair.primaryAgentId : pair.secondaryAgentId;
    if (this.service.role(session).source || sender !== from) {
      throw new ProblemError('invalid-state', `${pair.localVolume} is not mirrored here from the requesting site`);
    }
    if (session.state !== 'prepared' || session.type === 'snapshot-shipping') {
      throw new ProblemError('invalid-state', `session ${session.name} is ${session.state} here, not duplex`);
    }
    return { volume: localVolumeName(this.service.engine, pair), pair };
  }

  /**
   * Tracks the primary sent with the request (its point-in-time content, to
   * be written over the flash's), checked before anything is changed.
   */
  private fixupWrites(
    pairs: Array<{ target: string }>,
    fixups: PerformParams['fixups'],
    payload: Buffer | null,
  ): Array<{ target: string; offset: number; data: Buffer }> {
    if (fixups === undefined) return [];
    const writes: Array<{ target: string; offset: number; data: Buffer }> = [];
    let at = 0;
    for (const fixup of fixups) {
      const target = pairs[fixup.pair]?.target;
      const track = fixup.track;
      if (target === undefined) throw new ProblemError('bad-request', 'flash.mirror: a fixup names an unknown pair');
      const device = this.service.engine.device(target);
      const offset = track * device.trackSize;
      const length = Math.min(device.trackSize, device.sizeBytes - offset);
      if (length <= 0 || !payload || at + length > payload.length) throw new ProblemError('bad-request', 'flash.mirror: fixup data is missing or out of range');
      writes.push({ target, offset, data: payload.subarray(at, at + length) });
      at += length;
    }
    return writes;
  }

  /** The request's pairs as local volumes, refused unless the states permit the flash here. */
  private resolvePairs(from: string, params: PerformParams): { pairs: Array<{ source: string; target: string }>; copySets: string[] } {
    const pairs: Array<{ source: string; target: string }> = [];
    const copySets: string[] = [];
    for (const entry of params.pairs) {
      const source = this.secondaryVolume(entry.sourcePair, from);
      copySets.push(source.pair.id);
      if (entry.targetPair !== undefined) {
        const target = this.secondaryVolume(entry.targetPair, from);
        copySets.push(target.pair.id);
        pairs.push({ source: source.volume, target: target.volume });
      } else if (entry.remoteTarget !== undefined) {
        const remote = entry.remoteTarget;
        this.service.engine.getVolume(remote);
        if (secondaryOf(this.service, remote) || primaryOf(this.service, remote)) {
          throw new ProblemError('volume-busy', `${remote} is in a copy set; a coordinated flash needs a volume of its own here`);
        }
        pairs.push({ source: source.volume, target: remote });
      } else {
        throw new ProblemError('bad-request', 'flash.mirror: a pair names targetPair or remoteTarget');
      }
    }
    return { pairs, copySets };
  }

  /** A refresh or reverse needs the session here with the same pairs (made by an earlier preserved establish). */
  private sameSession(session: string, pairs: Array<{ source: string; target: string }>): void {
    const existing = this.flash.get(session);
    const same = pairs.every((pair) => existing.pairs.some((p) => p.source === pair.source && p.target === pair.target));
    if (!same || existing.pairs.length !== pairs.length) {
      throw new ProblemError('invalid-state', `flash ${session} here does not hold the same pairs`);
    }
  }

  private async perform(from: string, params: PerformParams, payload: Buffer | null): Promise<boolean> {
    const session = params.session;
    const { pairs, copySets } = this.resolvePairs(from, params);
    const fixups = this.fixupWrites(pairs, params.fixups, payload);
    // Semi-sync writes acknowledged on arrival are applied before the point in time.
    await this.service.target.arrivals.settlePairs(copySets);
    const changed = pairs.map((pair) => (params.kind === 'reverse' ? pair.source : pair.target));
    for (const volume of changed) {
      if (this.ordered.has(volume)) throw new ProblemError('conflict', `a flash change of ${volume} is already running`);
    }
    for (const volume of changed) this.ordered.add(volume);
    try {
      if (params.kind === 'establish') {
        // A withdrawn session of that name is what an earlier mirrored flash left: the primary reuses the name.
        const stale = this.flash.list().find((existing) => existing.name === session && existing.withdrawnAt);
        if (stale) await this.flash.remove(session);
        await this.flash.establish({
          ...params.options,
          preserveMirror: false,
          name: session,
          pairs,
          coordinated: false,
          holdTimeoutMs: 10_000,
        });
      } else {
        this.sameSession(session, pairs);
        if (params.kind === 'refresh') await this.flash.refresh(session, { holdTimeoutMs: 10_000 });
        else await this.flash.reverse(session, { holdTimeoutMs: 10_000 });
      }
      for (const write of fixups) await this.service.engine.device(write.target).write(write.offset, write.data);
      if (fixups.length > 0) await this.service.engine.flush();
      this.event('info', session, `flash ${session}: performed the primary's ${params.kind}${params.coordinated ? ' (coordinated point in time)' : ''}`);
      return true;
    } finally {
      for (const volume of changed) this.ordered.delete(volume);
    }
  }
}
