import { ProblemError, type FailbackOptions, type SessionAction } from '@tandem/contract';
import type { GroupEntry } from './async-groups.ts';
import type { RpcRequest, RpcResult } from './link/rpc-connection.ts';
import { handleClusterRequest } from './clusters/peer-requests.ts';
import { localCodes } from './failback.ts';
import { MultiPrimarySessions } from './multi-primary.ts';
import { problemMessage } from './pair-source.ts';
import { num, str } from './peer-params.ts';
import type { FlashMirror } from './flash-mirror.ts';
import type { ReplicationService } from './service.ts';
import type { ShippedEntry } from './shipping-source.ts';
import type { PairRecord, SessionRecord } from './session-store.ts';
import { STREAM_METHODS, StreamFences } from './stream-fence.ts';
import { localVolumeName } from './copy-set-volumes.ts';

/** How long `pair.codes` with `settle` waits for acknowledged semi-sync writes of its tracks to be applied. */
const SETTLE_WAIT_MS = 5000;
/**
 * Semi-sync backpressure: while this many bytes acknowledged on arrival are
 * not written here yet, a further write is acknowledged only once its own
 * write was attempted (the source then waits like a sync one), so a source
 * faster than this disk cannot pile up unbounded unapplied data.
 */
const ARRIVAL_BACKLOG_BYTES = 32 * 1024 * 1024;

/**
 * Serves the requests the other site sends over the peer link: session
 * bookkeeping, and the target side of mirroring (writes, trims, flushes,
 * bitmaps and codes for failback, tracks for repair).
 */
export class TargetHandlers {
  /** Tracks whose arrival was acknowledged but whose write failed, being repaired. */
  readonly repairing = new Set<string>();
  repaired = 0;
  /** Semi-sync writes acknowledged on arrival and not applied yet, per `pair:track`. */
  private readonly arriving = new Map<string, number>();
  /** Per pair: the write attempts of semi-sync writes acknowledged on arrival that have not ended. */
  private readonly attempts = new Map<string, Set<Promise<void>>>();
  /** The runs of the mirroring streams this site receives (see stream-fence.ts). */
  readonly fences = new StreamFences();
  /**
   * Semi-sync writes acknowledged on arrival whose local write has not
   * started yet, in arrival order. They start once their acknowledgement is
   * on its way (setImmediate), or before the next peer request is served, so
   * they start in arrival order relative to every later request.
   */
  private readonly unstarted: Array<() => void> = [];
  /** Bytes acknowledged on arrival whose write has not been attempted yet. */
  private unapplied = 0;
  /**
   * Test-only fault injection: this many semi-sync writes fail here after
   * their arrival was acknowledged. Tests in one process set it; agent
   * processes read TANDEM_TEST_FAIL_ARRIVAL_WRITES at start. `holdStopSource`
   * (tests in one process): the source stops for a recover only once it resolves.
   */
  readonly faults: { failArrivalWrites: number; holdStopSource: Promise<void> | null } = {
    failArrivalWrites: Number(process.env.TANDEM_TEST_FAIL_ARRIVAL_WRITES ?? 0),
    holdStopSource: null,
  };
  /** Flash copy's mirror interplay (flash-mirror.ts), once installed: serves `flash.mirror`. */
  flashMirror: FlashMirror | null = null;

  constructor(private readonly service: ReplicationService) {}

  async handle(request: RpcRequest): Promise<RpcResult> {
    try {
      return await this.handleRequest(request);
    } catch (error) {
      // The source tells the administrator where: this site's pool is full (the source marks what did not arrive).
      if (error instanceof ProblemError && error.problem === 'no-space') {
        const site = this.service.site;
        // How full: what the pool holds and what its file system has left (best effort: the failure is said regardless).
        const pool = await this.service.engine.poolStats().catch(() => null);
        const mib = (bytes: number) => `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
        const figures = pool
          ? `: ${mib(pool.usedBytes)} in use by ${pool.volumes} volume(s) and ${pool.snapshots} snapshot(s), ${mib(pool.filesystemFreeBytes)} free on the file system holding it`
          : '';
        throw new ProblemError('no-space', `the pool of ${site} is full (${error.message})${figures}`, {
          site,
          ...(pool ? { usedBytes: pool.usedBytes, filesystemFreeBytes: pool.filesystemFreeBytes } : {}),
        });
      }
      throw error;
    }
  }

  private async handleRequest(request: RpcRequest): Promise<RpcResult> {
    this.startArrived();
    // Nothing is served before what was staged or committed before a restart is applied (it is older than anything to come).
    await this.service.recovered;
    if (STREAM_METHODS.has(request.method)) {
      const session = this.streamSession(request.method, request.params);
      // A session with a broken copy set here receives nothing (the source records it and stays suspended).
      this.service.copySetVolumes.refuseIfBroken(session);
      return this.fences.admit(session.id, session.name, request.peerAgentId, request.params.run, () => this.serve(request));
    }
    if (request.method === 'stream.fence') return this.fence(request);
    return this.serve(request);
  }

  /** The session a stream request belongs to. */
  private streamSession(method: string, params: Record<string, unknown>): SessionRecord {
    const service = this.service;
    if (method.startsWith('pair.')) return service.session(service.pair(str(params, 'pair')).sessionId);
    return service.session(str(params, 'session'));
  }

  /**
   * `stream.fence` `{session, run}`: the sending agent starts mirroring run
   * `run` of the session toward this site. Requests of its earlier runs are
   * refused from now; those being served end first, then what they left is
   * settled: writes acknowledged on arrival are attempted, its staged parts
   * of multi-primary rounds and an uncommitted shipping cycle are dropped
   * (it resyncs everything it had not seen applied).
   */
  private async fence(request: RpcRequest): Promise<RpcResult> {
    const service = this.service;
    const session = service.session(str(request.params, 'session'));
    const run = str(request.params, 'run');
    if (service.isSource(session)) {
      throw new ProblemError('invalid-state', `this site is the source of session ${session.name} (${session.direction}); it receives no stream`);
    }
    service.copySetVolumes.refuseIfBroken(session);
    const pairs = service.pairsOf(session).map((pair) => pair.id);
    await this.fences.fence(session.id, request.peerAgentId, run, async () => {
      await Promise.all(pairs.map((pair) => this.attempted(pair)));
      if (session.type === 'async') await service.applier.dropParts(session.id, request.peerAgentId);
      if (session.type === 'snapshot-shipping') await service.receiver.discard(session.id);
    });
    return {};
  }

  private async serve(request: RpcRequest): Promise<RpcResult> {
    const { method, params, payload } = request;
    const service = this.service;
    // Multi-primary sessions: holds, cuts and commits of the master's rounds, parts staged at the secondary.
    if (MultiPrimarySessions.serves(method)) return service.multiPrimary.handle(request);
    switch (method) {
      case 'session.put': {
        const record = params.record as SessionRecord;
        if (record.peerAgentId !== service.agentId) throw new ProblemError('bad-request', 'this session names another agent');
        service.adoptSession(record);
        return {};
      }
      case 'pair.put':
        service.adoptPair(params.pair as PairRecord);
        return {};
      case 'pair.remove':
        service.forgetPair(service.pair(str(params, 'pair')));
        return {};
      case 'pair.broken':
        // The other site found the copy set's volume there gone: recorded here too (a source stops mirroring the session).
        service.copySetVolumes.markBroken(service.pair(str(params, 'pair')), str(params, 'reason'), { tell: false });
        return {};
      case 'pair.attach':
        await service.running.attach(str(params, 'session'), params.pair as PairRecord);
        return {};
      case 'pair.joined':
        service.running.joinedAtSource(str(params, 'pair'));
        return {};
      case 'volume.size':
        return { result: { sizeBytes: service.engine.getVolume(str(params, 'name')).sizeBytes } };
      case 'session.state':
        service.applyRemoteState(params.record as SessionRecord, request.peerAgentId);
        return {};
      case 'session.action': {
        const session = service.session(str(params, 'session'));
        await service.execute(session, str(params, 'action') as SessionAction, (params.options ?? {}) as Partial<FailbackOptions>);
        return {};
      }
      case 'session.settings': {
        const session = service.session(str(params, 'session'));
        service.shipping.applyInterval(session, num(params, 'shipIntervalMs'));
        return {};
      }
      case 'session.ship-now':
        return { result: await service.shipNow(str(params, 'session')) };
      case 'session.verify':
        return { result: await service.verify(str(params, 'session'), { forwarded: true }) };
      case 'session.prepare-target': {
        const session = service.session(str(params, 'session'));
        for (const pair of service.pairsOf(session)) {
          const device = service.engine.device(localVolumeName(service.engine, pair));
          await device.trim(0, device.sizeBytes);
        }
        // Every copy set's initial copy starts now: until the source reports the session prepared, a recover reports it inconsistent.
        service.running.initialCopiesStart(session);
        service.setState(session, 'preparing', {}, false);
        return {};
      }
      case 'session.stop-source': {
        // The target is being recovered: this site (the source) stops and keeps marking. Its state is recovering, as
        // at the target, so neither a suspend in flight nor the resume after a link failure makes it mirror again.
        if (this.faults.holdStopSource) await this.faults.holdStopSource;
        const session = service.session(str(params, 'session'));
        await service.mirroring.suspended(session);
        if (service.isSource(session) && session.state !== 'defined' && session.state !== 'target-available') {
          service.setState(session, 'recovering', {}, false);
        }
        await service.stopSource(session, 'the target was recovered');
        return {};
      }
      case 'session.become-target': {
        const session = service.session(str(params, 'session'));
        await service.becomeTarget(session, params.direction === 'h2-h1' ? 'h2-h1' : 'h1-h2');
        return {};
      }
      case 'session.terminated':
        await service.terminateHere(service.session(str(params, 'session')));
        return {};
      case 'session.preflight': {
        const session = service.session(str(params, 'session'));
        const options = (params.options ?? {}) as { verifyCodes: boolean; fullCompare: boolean };
        return { result: await service.preflight(session.name, options) };
      }
      case 'pair.write':
        return this.write(params, payload);
      case 'cg.apply': {
        const session = service.session(str(params, 'session'));
        if (service.isSource(session) || session.state === 'target-available' || session.state === 'recovering') {
          throw new ProblemError('invalid-state', `session ${session.name} is ${session.state} here; consistency groups are refused`);
        }
        if (!Array.isArray(params.entries)) throw new ProblemError('bad-request', 'cg.apply needs entries');
        await service.applier.apply(
          { session: session.id, group: num(params, 'group'), time: num(params, 'time'), entries: params.entries as GroupEntry[] },
          payload,
        );
        return {};
      }
      case 'ship.begin':
      case 'ship.chunk':
      case 'ship.commit': {
        const session = service.session(str(params, 'session'));
        if (service.isSource(session) || session.state === 'target-available' || session.state === 'recovering') {
          throw new ProblemError('invalid-state', `session ${session.name} is ${session.state} here; shipped cycles are refused`);
        }
        const epoch = str(params, 'epoch');
        const cycle = num(params, 'cycle');
        if (method === 'ship.begin') await service.receiver.begin(session.id, epoch, cycle);
        else if (method === 'ship.commit') await service.receiver.commit(session.id, epoch, cycle, num(params, 'time'));
        else {
          if (!Array.isArray(params.entries)) throw new ProblemError('bad-request', 'ship.chunk needs entries');
          await service.receiver.chunk(session.id, epoch, cycle, params.entries as ShippedEntry[], payload);
        }
        return {};
      }
      case 'pair.trim': {
        const { device } = this.targetPair(params);
        const offset = num(params, 'offset');
        const length = num(params, 'length');
        if (params.zeroes) await device.writeZeroes(offset, length);
        else await device.trim(offset, length);
        return {};
      }
      case 'pair.flush': {
        // Writes acknowledged on arrival are attempted first; tracks whose attempt failed are being repaired (not durable here).
        const { pair, device } = this.targetPair(params);
        await this.attempted(pair.id);
        await device.flush();
        const prefix = `${pair.id}:`;
        const repairing = [...this.repairing].filter((key) => key.startsWith(prefix)).map((key) => Number(key.slice(prefix.length)));
        return { result: { repairing } };
      }
      case 'pair.bitmap': {
        const pair = service.pair(str(params, 'pair'));
        const id = params.which === 'target-changed' ? pair.targetChangedBitmap : pair.outOfSyncBitmap;
        if (id === null) return { payload: null };
        const view = service.engine.bitmaps.view(id);
        const bits = new Uint8Array(Math.ceil(view.trackCount / 8));
        for (let track = view.nextSet(0); track >= 0; track = view.nextSet(track + 1)) bits[track >>> 3] |= 1 << (track & 7);
        return { payload: Buffer.from(bits.buffer) };
      }
      case 'pair.codes': {
        const pair = service.pair(str(params, 'pair'));
        const tracks = params.tracks;
        if (!Array.isArray(tracks) || !tracks.every((t) => Number.isSafeInteger(t) && t >= 0)) {
          throw new ProblemError('bad-request', 'peer request: tracks must be a list of track numbers');
        }
        // Online verify: semi-sync writes acknowledged on arrival are applied first; tracks still pending are reported busy.
        const busy = params.settle === true ? await this.settle(pair.id, tracks as number[]) : [];
        const { codes, computed } = await localCodes(service.engine, localVolumeName(service.engine, pair), tracks as number[]);
        return { result: { computed, busy }, payload: Buffer.from(codes.buffer) };
      }
      case 'pair.repair': {
        // At the source: the target failed to apply acknowledged writes; mark the tracks and copy them.
        const pair = service.pair(str(params, 'pair'));
        const tracks = params.tracks;
        if (!Array.isArray(tracks) || !tracks.every((t) => Number.isSafeInteger(t) && t >= 0)) {
          throw new ProblemError('bad-request', 'peer request: tracks must be a list of track numbers');
        }
        return { result: { repaired: await service.repairTracks(pair, tracks as number[]) } };
      }
      case 'pair.read-track': {
        const pair = service.pair(str(params, 'pair'));
        const device = service.engine.device(localVolumeName(service.engine, pair));
        const track = num(params, 'track');
        const offset = track * device.trackSize;
        if (offset >= device.sizeBytes) throw new ProblemError('out-of-range', `no track ${track}`);
        const data = Buffer.allocUnsafe(Math.min(device.trackSize, device.sizeBytes - offset));
        await device.readInto(offset, data);
        return { payload: data };
      }
      case 'flash.mirror':
        if (!this.flashMirror) throw new ProblemError('not-supported', 'flash copy is not running at this site');
        return this.flashMirror.handle(request);
      case 'cluster.report':
      case 'cluster.history':
        return handleClusterRequest(service, request);
      default:
        throw new ProblemError('not-supported', `unknown peer request ${method}`);
    }
  }

  /** The local volume of a pair this site is the target of, refusing when it is not (anymore). */
  private targetPair(params: Record<string, unknown>) {
    const pair = this.service.pair(str(params, 'pair'));
    const session = this.service.session(pair.sessionId);
    if (this.service.isSource(session)) {
      throw new ProblemError('invalid-state', `this site is the source of session ${session.name}`);
    }
    if (session.state === 'target-available' || session.state === 'recovering' || session.state === 'defined') {
      throw new ProblemError('invalid-state', `session ${session.name} is ${session.state} here; mirrored writes are refused`);
    }
    return { pair, session, device: this.service.engine.device(localVolumeName(this.service.engine, pair)) };
  }

  private async write(params: Record<string, unknown>, payload: Buffer | null): Promise<RpcResult> {
    const { pair, session, device } = this.targetPair(params);
    if (!payload) throw new ProblemError('bad-request', 'pair.write carries the data as payload');
    const offset = num(params, 'offset');
    const fua = params.fua === true;
    if (params.ack !== 'arrival') {
      await device.write(offset, payload, { fua });
      return {};
    }
    // Semi-sync: acknowledge arrival now; a failed write is repaired here, never reported to the host.
    // (The payload is a view of a socket chunk the link never reuses, so it may outlive the call; it may share that chunk with neighbouring frames.)
    const data = payload;
    const first = Math.floor(offset / device.trackSize);
    const end = Math.floor((offset + Math.max(data.length, 1) - 1) / device.trackSize) + 1;
    const keys: string[] = [];
    for (let track = first; track < end; track++) keys.push(`${pair.id}:${track}`);
    for (const key of keys) this.arriving.set(key, (this.arriving.get(key) ?? 0) + 1);
    const backlogged = this.unapplied > ARRIVAL_BACKLOG_BYTES;
    this.unapplied += data.length;
    // Settles once the write was attempted: written, or failed with its tracks listed as repairing (a flush then reports them).
    let attemptEnded!: () => void;
    const attempt = new Promise<void>((resolve) => (attemptEnded = resolve));
    let attempts = this.attempts.get(pair.id);
    if (!attempts) {
      attempts = new Set();
      this.attempts.set(pair.id, attempts);
    }
    const pending = attempts;
    pending.add(attempt);
    void attempt.then(() => {
      pending.delete(attempt);
      if (pending.size === 0 && this.attempts.get(pair.id) === pending) this.attempts.delete(pair.id);
    });
    // The local write starts after the acknowledgement is sent: it is no longer on the host's path.
    this.deferStart(async () => {
      try {
        try {
          if (this.faults.failArrivalWrites > 0) {
            this.faults.failArrivalWrites--;
            throw new ProblemError('internal-error', 'injected target write failure');
          }
          await device.write(offset, data, { fua });
        } finally {
          this.unapplied -= data.length;
        }
      } catch (error) {
        const repair = this.repair(session, pair, first, end, problemMessage(error));
        attemptEnded();
        await repair;
      } finally {
        attemptEnded();
        for (const key of keys) {
          const left = this.arriving.get(key)! - 1;
          if (left === 0) this.arriving.delete(key);
          else this.arriving.set(key, left);
        }
      }
    });
    if (backlogged) {
      // Too much unapplied already: this one is acknowledged once written (a failure still goes to repair, not to the host).
      this.startArrived();
      await attempt;
    }
    return {};
  }

  /** Waits until every write of the pair acknowledged on arrival so far was attempted (written, or failed and handed to repair). */
  private async attempted(pair: string): Promise<void> {
    const pending = this.attempts.get(pair);
    if (!pending || pending.size === 0) return;
    this.startArrived();
    await Promise.all([...pending]);
  }

  private deferStart(start: () => Promise<void>): void {
    this.unstarted.push(() => void start());
    if (this.unstarted.length === 1) setImmediate(() => this.startArrived());
  }

  /** Starts the local writes of semi-sync writes acknowledged on arrival, in arrival order. */
  private startArrived(): void {
    if (this.unstarted.length === 0) return;
    for (const start of this.unstarted.splice(0)) start();
  }

  /** Waits (bounded) until no semi-sync write acknowledged on arrival, nor its repair, is pending for these copy sets. */
  async settlePairs(pairs: string[]): Promise<void> {
    const prefixes = pairs.map((pair) => `${pair}:`);
    const pending = () => [...this.arriving.keys(), ...this.repairing].some((key) => prefixes.some((prefix) => key.startsWith(prefix)));
    const deadline = Date.now() + SETTLE_WAIT_MS;
    while (pending()) {
      if (Date.now() > deadline) throw new ProblemError('timeout', 'writes acknowledged on arrival are still being applied here');
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  }

  /** Waits (bounded) until no acknowledged write or repair of these tracks is pending; returns those still pending. */
  private async settle(pair: string, tracks: number[]): Promise<number[]> {
    const pending = () => tracks.filter((track) => this.arriving.has(`${pair}:${track}`) || this.repairing.has(`${pair}:${track}`));
    const deadline = Date.now() + SETTLE_WAIT_MS;
    let left = pending();
    while (left.length > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      left = pending();
    }
    return left;
  }

  /**
   * A write acknowledged on arrival failed here: the source marks its tracks
   * out-of-sync and copies them with its resync (which copies again if a
   * host write races the copy, so no newer write is overwritten by an older
   * copy). The host never sees the error.
   */
  private async repair(session: SessionRecord, pair: PairRecord, first: number, end: number, why: string): Promise<void> {
    const service = this.service;
    const catalog = service.engine.catalog;
    const tracks = Array.from({ length: end - first }, (_, i) => first + i);
    const keys = tracks.map((track) => `${pair.id}:${track}`);
    for (const key of keys) this.repairing.add(key);
    catalog.recordEvent('pair.repair', 'warning', session.name, `write to ${pair.localVolume} failed (${why}); repairing ${tracks.length} track(s) from the source`, {
      pair: pair.id,
      tracks,
    });
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          const answer = await service.link(session).call('pair.repair', { pair: pair.id, tracks }, null, { waitForLinkMs: 5000, timeoutMs: 120_000 });
          const repaired = (answer.result as { repaired?: boolean } | null)?.repaired === true;
          this.repaired++;
          catalog.recordEvent(
            'pair.repaired',
            'info',
            session.name,
            repaired
              ? `repaired ${tracks.length} track(s) of ${pair.localVolume}`
              : `${tracks.length} track(s) of ${pair.localVolume} are marked out-of-sync at the source; its resync copies them`,
            { pair: pair.id, tracks, copied: repaired },
          );
          return;
        } catch (error) {
          if (attempt >= 40) {
            catalog.recordEvent('pair.repair', 'error', session.name, `tracks ${first}..${end - 1} of ${pair.localVolume} could not be repaired: ${problemMessage(error)}`, {
              pair: pair.id,
              tracks,
            });
            return;
          }
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      }
    } finally {
      for (const key of keys) this.repairing.delete(key);
    }
  }
}
