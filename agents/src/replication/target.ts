import { ProblemError, type PeerParams } from '@tandem/contract';
import type { RpcRequest, RpcResult } from './link/rpc-connection.ts';
import {
  dispatchPeerCall,
  parsePeerRequest,
  STREAM_METHODS,
  type PeerAnswer,
  type PeerCall,
  type PeerHandlerTable,
  type ServedPeerMethod,
} from './link/peer-protocol.ts';
import { clusterPeerHandlers } from './clusters/peer-requests.ts';
import { bitmapBytes, localCodes } from './failback.ts';
import type { FlashMirror } from './flash-mirror.ts';
import type { ReplicationHooks } from './hooks.ts';
import type { SessionRecord } from './session-store.ts';
import { StreamFences } from './stream-fence.ts';
import { ArrivalWrites, type ArrivalWritesHooks } from './arrival-writes.ts';
import type { SessionReader } from './session-reader.ts';
import { localVolumeName } from './copy-set-volumes.ts';

/** What target uses of the service and the other parts (hooks.ts). */
export type TargetHooks = Pick<
  ReplicationHooks,
  'actions' | 'applier' | 'applyRemoteState' | 'copySets' | 'copySetVolumes' | 'engine' | 'failback' | 'faults' | 'joining' | 'journals' | 'mirroring' | 'multiPrimary' | 'pair' | 'pairsOf' | 'preflight' | 'receiver' | 'recovered' | 'role' | 'rounds' | 'running' | 'session' | 'setState' | 'shipNow' | 'shipping' | 'site' | 'verify'
> &
  ArrivalWritesHooks &
  SessionReader;

/** The methods TargetHandlers serves itself (the rest of ServedPeerMethod belongs to the other receiving parts). */
type TargetMethod =
  | 'stream.fence'
  | `session.${'put' | 'state' | 'action' | 'settings' | 'ship-now' | 'verify' | 'prepare-target' | 'stop-source' | 'become-target' | 'terminated' | 'preflight'}`
  | `pair.${'put' | 'remove' | 'broken' | 'attach' | 'joined' | 'write' | 'trim' | 'flush' | 'bitmap' | 'codes' | 'repair' | 'read-track'}`
  | 'volume.size'
  | `ship.${'begin' | 'chunk' | 'commit'}`;

/**
 * Serves the requests the other site sends over the peer link: session
 * bookkeeping, and the target side of mirroring (writes, trims, flushes,
 * bitmaps and codes for failback, tracks for repair).
 */
export class TargetHandlers {
  /** The runs of the mirroring streams this site receives (see stream-fence.ts). */
  readonly fences = new StreamFences();
  /** Semi-sync writes acknowledged on arrival: started in order, settled, repaired (arrival-writes.ts). */
  readonly arrivals: ArrivalWrites;
  /** Flash copy's mirror interplay (flash-mirror.ts), once installed: serves `flash.mirror`. */
  flashMirror: FlashMirror | null = null;

  constructor(private readonly service: TargetHooks) {
    this.arrivals = new ArrivalWrites(service);
  }

  /**
   * Serves a request from the other site: parsed against the peer protocol
   * first (an unknown method or malformed parameters are refused before
   * anything runs), then the stream fence for stream requests, then the
   * method's handler from the dispatch table.
   */
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
    const call = parsePeerRequest(request);
    this.arrivals.startArrived();
    // Nothing is served before what was staged or committed before a restart is applied (it is older than anything to come).
    await this.service.recovered;
    if (STREAM_METHODS.has(call.method)) {
      const params = call.params as { run: string; pair?: string; session?: string };
      const session = this.streamSession(params);
      // A session with a broken copy set here receives nothing (the source records it and stays suspended).
      this.service.copySetVolumes.refuseIfBroken(session);
      return this.fences.admit(session.id, session.name, call.peerAgentId, params.run, async () => dispatchPeerCall(this.table(), call));
    }
    return dispatchPeerCall(this.table(), call);
  }

  /** The session a stream request belongs to. */
  private streamSession(params: { pair?: string; session?: string }): SessionRecord {
    const service = this.service;
    if (params.pair !== undefined) return service.session(service.pair(params.pair).sessionId);
    return service.session(params.session!);
  }

  private handlers: PeerHandlerTable<ServedPeerMethod> | null = null;

  /**
   * Every method this agent serves: its own, and those of the other
   * receiving parts (multi-primary sessions, their running changes and
   * failback, flash copy's mirror, clusters). Built on first use: the parts
   * exist once the service is.
   */
  private table(): PeerHandlerTable<ServedPeerMethod> {
    if (this.handlers) return this.handlers;
    const service = this.service;
    const multi = service.multiPrimary;
    this.handlers = {
      ...this.ownHandlers(),
      ...multi.peerHandlers,
      ...service.rounds.peerHandlers,
      ...service.running.peerHandlers,
      ...service.failback.peerHandlers,
      ...clusterPeerHandlers(service),
      'flash.mirror': (call) => {
        if (!this.flashMirror) throw new ProblemError('not-supported', 'flash copy is not running at this site');
        return this.flashMirror.handle(call);
      },
    };
    return this.handlers;
  }

  /** This part's methods: session bookkeeping and the target side of mirroring. */
  private ownHandlers(): PeerHandlerTable<TargetMethod> {
    const service = this.service;
    return {
      'stream.fence': (call) => this.fence(call),
      'session.put': ({ params }) => {
        if (!service.role(params.record).secondary) throw new ProblemError('bad-request', 'this session names another agent');
        service.copySets.adoptSession(params.record);
        return {};
      },
      'pair.put': ({ params }) => {
        service.copySets.adoptPair(params.pair);
        return {};
      },
      'pair.remove': ({ params }) => {
        service.copySets.forgetPair(service.pair(params.pair));
        return {};
      },
      'pair.broken': ({ params }) => {
        // The other site found the copy set's volume there gone: recorded here too (a source stops mirroring the session).
        service.copySetVolumes.markBroken(service.pair(params.pair), params.reason, { tell: false });
        return {};
      },
      'pair.attach': async ({ params }) => {
        await service.running.attach(params.session, params.pair);
        return {};
      },
      'pair.joined': ({ params }) => {
        service.joining.joinedAtSource(params.pair);
        return {};
      },
      'volume.size': ({ params }) => ({ result: { sizeBytes: service.engine.getVolume(params.name).sizeBytes } }),
      'session.state': ({ params, peerAgentId }) => {
        service.applyRemoteState(params.record, peerAgentId);
        return {};
      },
      'session.action': async ({ params }) => {
        const session = service.session(params.session);
        await service.actions.execute(session, params.action, params.options ?? {});
        return {};
      },
      'session.settings': ({ params }) => {
        const session = service.session(params.session);
        service.shipping.applyInterval(session, params.shipIntervalMs);
        return {};
      },
      'session.ship-now': async ({ params }) => ({ result: await service.shipNow(params.session) }),
      'session.verify': async ({ params }) => ({ result: await service.verify(params.session, { forwarded: true }) }),
      'session.prepare-target': async ({ params }) => {
        const session = service.session(params.session);
        for (const pair of service.pairsOf(session)) {
          const device = service.journals.replicaDevice(pair);
          await device.trim(0, device.sizeBytes);
        }
        // Every copy set's initial copy starts now: until the source reports the session prepared, a recover reports it inconsistent.
        service.joining.initialCopiesStart(session);
        service.setState(session, 'preparing', {}, false);
        return {};
      },
      'session.stop-source': async ({ params }) => {
        // The target is being recovered: this site (the source) stops and keeps marking. Its state is recovering, as
        // at the target, so neither a suspend in flight nor the resume after a link failure makes it mirror again.
        if (service.faults.holdStopSource) await service.faults.holdStopSource;
        const session = service.session(params.session);
        await service.mirroring.suspended(session);
        if (service.role(session).source && session.state !== 'defined' && session.state !== 'target-available') {
          service.setState(session, 'recovering', {}, false);
        }
        await service.mirroring.stopSource(session, 'the target was recovered');
        return {};
      },
      'session.become-target': async ({ params }) => {
        const session = service.session(params.session);
        await service.failback.becomeTarget(session, params.direction);
        return {};
      },
      'session.terminated': async ({ params }) => {
        await service.actions.terminateHere(service.session(params.session));
        return {};
      },
      'session.preflight': async ({ params }) => {
        const session = service.session(params.session);
        const options = (params.options ?? {}) as { verifyCodes: boolean; fullCompare: boolean };
        return { result: await service.preflight(session.name, options) };
      },
      'pair.write': ({ params, payload }) => this.write(params, payload!),
      'ship.begin': async ({ params }) => {
        const session = this.shippingSession(params.session);
        await service.receiver.begin(session.id, params.epoch, params.cycle);
        return {};
      },
      'ship.chunk': async ({ params, payload }) => {
        const session = this.shippingSession(params.session);
        await service.receiver.chunk(session.id, params.epoch, params.cycle, params.entries, payload);
        return {};
      },
      'ship.commit': async ({ params }) => {
        const session = this.shippingSession(params.session);
        await service.receiver.commit(session.id, params.epoch, params.cycle, params.time);
        return {};
      },
      'pair.trim': async ({ params }) => {
        const { device } = this.targetPair(params.pair);
        if (params.zeroes) await device.writeZeroes(params.offset, params.length);
        else await device.trim(params.offset, params.length);
        return {};
      },
      'pair.flush': async ({ params }) => {
        // Writes acknowledged on arrival are attempted first; tracks whose attempt failed are being repaired (not durable here).
        const { pair, device } = this.targetPair(params.pair);
        await this.arrivals.attempted(pair.id);
        await device.flush();
        return { result: { repairing: this.arrivals.repairingTracks(pair.id) } };
      },
      'pair.bitmap': ({ params }) => {
        const pair = service.pair(params.pair);
        const id = params.which === 'target-changed' ? pair.targetChangedBitmap : pair.outOfSyncBitmap;
        if (id === null) return { payload: null };
        return { payload: Buffer.from(bitmapBytes(service.engine, id, service.engine.bitmaps.view(id).trackCount).buffer) };
      },
      'pair.codes': async ({ params }) => {
        const pair = service.pair(params.pair);
        const tracks = params.tracks;
        // Online verify: semi-sync writes acknowledged on arrival are applied first; tracks still pending are reported busy.
        const busy = params.settle === true ? await this.arrivals.settle(pair.id, tracks) : [];
        const { codes, computed } = await localCodes(service.engine, localVolumeName(service.engine, pair), tracks);
        return { result: { computed, busy }, payload: Buffer.from(codes.buffer) };
      },
      'pair.repair': async ({ params }) => {
        // At the source: the target failed to apply acknowledged writes; mark the tracks and copy them.
        const pair = service.pair(params.pair);
        return { result: { repaired: await service.mirroring.repairTracks(pair, params.tracks) } };
      },
      'pair.read-track': async ({ params }) => {
        const pair = service.pair(params.pair);
        const device = service.engine.device(localVolumeName(service.engine, pair));
        const track = params.track;
        const offset = track * device.trackSize;
        if (offset >= device.sizeBytes) throw new ProblemError('out-of-range', `no track ${track}`);
        const data = Buffer.allocUnsafe(Math.min(device.trackSize, device.sizeBytes - offset));
        await device.readInto(offset, data);
        return { payload: data };
      },
    };
  }

  /** A snapshot-shipping session this site receives cycles of, refusing when it is not (anymore). */
  private shippingSession(id: string): SessionRecord {
    const session = this.service.session(id);
    if (this.service.role(session).source || session.state === 'target-available' || session.state === 'recovering') {
      throw new ProblemError('invalid-state', `session ${session.name} is ${session.state} here; shipped cycles are refused`);
    }
    return session;
  }

  /**
   * `stream.fence` `{session, run}`: the sending agent starts mirroring run
   * `run` of the session toward this site. Requests of its earlier runs are
   * refused from now; those being served end first, then what they left is
   * settled: writes acknowledged on arrival are attempted, its staged parts
   * of multi-primary rounds and an uncommitted shipping cycle are dropped
   * (it resyncs everything it had not seen applied).
   */
  private async fence(call: PeerCall<'stream.fence'>): Promise<PeerAnswer<'stream.fence'>> {
    const service = this.service;
    const session = service.session(call.params.session);
    const run = call.params.run;
    if (service.role(session).source) {
      throw new ProblemError('invalid-state', `this site is the source of session ${session.name} (${session.direction}); it receives no stream`);
    }
    service.copySetVolumes.refuseIfBroken(session);
    const pairs = service.pairsOf(session).map((pair) => pair.id);
    await this.fences.fence(session.id, call.peerAgentId, run, async () => {
      await Promise.all(pairs.map((pair) => this.arrivals.attempted(pair)));
      if (session.type === 'async') await service.applier.dropParts(session.id, call.peerAgentId);
      if (session.type === 'snapshot-shipping') await service.receiver.discard(session.id);
    });
    await service.journals.runFenced(session);
    return {};
  }

  /** The local volume of a pair this site is the target of, refusing when it is not (anymore). */
  private targetPair(id: string) {
    const pair = this.service.pair(id);
    const session = this.service.session(pair.sessionId);
    if (this.service.role(session).source) {
      throw new ProblemError('invalid-state', `this site is the source of session ${session.name}`);
    }
    if (session.state === 'target-available' || session.state === 'recovering' || session.state === 'defined') {
      throw new ProblemError('invalid-state', `session ${session.name} is ${session.state} here; mirrored writes are refused`);
    }
    return { pair, session, device: this.service.journals.replicaDevice(pair) };
  }

  private async write(params: PeerParams<'pair.write'>, payload: Buffer): Promise<PeerAnswer<'pair.write'>> {
    const { pair, session, device } = this.targetPair(params.pair);
    const offset = params.offset;
    const fua = params.fua === true;
    if (params.ack !== 'arrival') {
      await device.write(offset, payload, { fua });
      return {};
    }
    // Semi-sync: acknowledged on arrival, written after (arrival-writes.ts).
    await this.arrivals.accept(session, pair, device, offset, payload, fua);
    return {};
  }
}
