import { ProblemError, type FailbackOptions, type SessionAction } from '@tandem/contract';
import type { RpcRequest, RpcResult } from './link/rpc-connection.ts';
import { handleClusterRequest } from './clusters/peer-requests.ts';
import { localCodes } from './failback.ts';
import { problemMessage } from './pair-source.ts';
import type { ReplicationService } from './service.ts';
import type { PairRecord, SessionRecord } from './session-store.ts';

/**
 * Test-only fault injection: this many semi-sync writes fail at the target
 * after their arrival was acknowledged (read once, at start).
 */
const injectedArrivalFailures = { remaining: Number(process.env.TANDEM_TEST_FAIL_ARRIVAL_WRITES ?? 0) };

function str(params: Record<string, unknown>, key: string): string {
  const value = params[key];
  if (typeof value !== 'string') throw new ProblemError('bad-request', `peer request: ${key} must be a string`);
  return value;
}

function num(params: Record<string, unknown>, key: string): number {
  const value = params[key];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new ProblemError('bad-request', `peer request: ${key} must be a non-negative integer`);
  }
  return value;
}

/**
 * Serves the requests the other site sends over the peer link: session
 * bookkeeping, and the target side of mirroring (writes, trims, flushes,
 * bitmaps and codes for failback, tracks for repair).
 */
export class TargetHandlers {
  /** Tracks whose arrival was acknowledged but whose write failed, being repaired. */
  readonly repairing = new Set<string>();
  repaired = 0;

  constructor(private readonly service: ReplicationService) {}

  async handle(request: RpcRequest): Promise<RpcResult> {
    const { method, params, payload } = request;
    const service = this.service;
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
      case 'volume.size':
        return { result: { sizeBytes: service.engine.getVolume(str(params, 'name')).sizeBytes } };
      case 'session.state':
        service.applyRemoteState(params.record as SessionRecord);
        return {};
      case 'session.action': {
        const session = service.session(str(params, 'session'));
        await service.execute(session, str(params, 'action') as SessionAction, (params.options ?? {}) as Partial<FailbackOptions>);
        return {};
      }
      case 'session.prepare-target': {
        const session = service.session(str(params, 'session'));
        for (const pair of service.pairsOf(session)) {
          const device = service.engine.device(pair.localVolume);
          await device.trim(0, device.sizeBytes);
        }
        service.setState(session, 'preparing', {}, false);
        return {};
      }
      case 'session.stop-source': {
        const session = service.session(str(params, 'session'));
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
      case 'pair.trim': {
        const { device } = this.targetPair(params);
        const offset = num(params, 'offset');
        const length = num(params, 'length');
        if (params.zeroes) await device.writeZeroes(offset, length);
        else await device.trim(offset, length);
        return {};
      }
      case 'pair.flush': {
        const { device } = this.targetPair(params);
        await device.flush();
        return {};
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
        const { codes, computed } = await localCodes(service.engine, pair.localVolume, tracks as number[]);
        return { result: { computed }, payload: Buffer.from(codes.buffer) };
      }
      case 'pair.read-track': {
        const pair = service.pair(str(params, 'pair'));
        const device = service.engine.device(pair.localVolume);
        const track = num(params, 'track');
        const offset = track * device.trackSize;
        if (offset >= device.sizeBytes) throw new ProblemError('out-of-range', `no track ${track}`);
        const data = Buffer.allocUnsafe(Math.min(device.trackSize, device.sizeBytes - offset));
        await device.readInto(offset, data);
        return { payload: data };
      }
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
    return { pair, session, device: this.service.engine.device(pair.localVolume) };
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
    const data = Buffer.from(payload);
    void (async () => {
      try {
        if (injectedArrivalFailures.remaining > 0) {
          injectedArrivalFailures.remaining--;
          throw new ProblemError('internal-error', 'injected target write failure');
        }
        await device.write(offset, data, { fua });
      } catch (error) {
        await this.repair(session, pair, offset, data.length, problemMessage(error));
      }
    })();
    return {};
  }

  /** Re-reads the tracks of a failed write from the source and writes them here. */
  private async repair(session: SessionRecord, pair: PairRecord, offset: number, length: number, why: string): Promise<void> {
    const service = this.service;
    const device = service.engine.device(pair.localVolume);
    const first = Math.floor(offset / device.trackSize);
    const end = Math.floor((offset + length - 1) / device.trackSize) + 1;
    service.engine.catalog.recordEvent('pair.repair', 'warning', session.name, `write to ${pair.localVolume} failed (${why}); repairing ${end - first} track(s) from the source`);
    for (let track = first; track < end; track++) {
      const key = `${pair.id}:${track}`;
      this.repairing.add(key);
      for (let attempt = 0; ; attempt++) {
        try {
          const answer = await service.link(session).call('pair.read-track', { pair: pair.id, track }, null, { waitForLinkMs: 5000 });
          await device.write(track * device.trackSize, answer.payload!);
          break;
        } catch (error) {
          if (attempt >= 20) {
            service.engine.catalog.recordEvent('pair.repair', 'error', session.name, `track ${track} of ${pair.localVolume} could not be repaired: ${problemMessage(error)}`);
            break;
          }
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      }
      this.repairing.delete(key);
    }
    this.repaired++;
    service.engine.catalog.recordEvent('pair.repaired', 'info', session.name, `repaired ${end - first} track(s) of ${pair.localVolume}`);
  }
}
