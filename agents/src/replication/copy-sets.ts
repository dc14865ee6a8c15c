import { randomUUID } from 'node:crypto';
import { ProblemError, type SessionType, type VolumeDependent } from '@tandem/contract';
import { RunningCopySets } from './running-copy-sets.ts';
import type { ReplicationService } from './service.ts';
import { atSecondary, newCopySet, type CopySetOnTheWire, type HeldCopySet, type SessionRecord } from './session-store.ts';

/** A session's copy set that uses a volume, as a delete or resize refusal names it (VolumeDependentSchema `copy-set`). */
export type CopySetDependent = Extract<VolumeDependent, { kind: 'copy-set' }>;

/** Defining sessions and their copy sets at both sites. */
export class CopySets {
  constructor(private readonly service: ReplicationService) {
    // A volume in a copy set is neither deleted nor resized here while the copy set exists (its other side would be lost or differ in size).
    service.engine.addVolumeGuard((name) => this.dependents(name));
  }

  /**
   * The copy sets of any session (any state, either role) whose volume here
   * is `name`: the volume of that name now, by id (a broken copy set's old
   * volume is gone; one made again under its name is not the copy set's).
   */
  dependents(name: string): CopySetDependent[] {
    const service = this.service;
    const id = service.engine.volumeIdOrNull(name);
    const found: CopySetDependent[] = [];
    for (const pair of service.pairs.values()) {
      if (pair.localVolume !== name || pair.localVolumeId !== id || pair.broken) continue;
      const session = service.sessions.get(pair.sessionId);
      if (!session) continue;
      const started = session.state !== 'defined';
      const remove = `tandem-agent session remove ${session.name} ${pair.h1Volume}`;
      const action = started ? `${remove} (at the session's H1 site), or tandem-agent session terminate ${session.name}` : `${remove} (at the session's H1 site)`;
      found.push({
        kind: 'copy-set',
        session: session.name,
        sessionState: session.state,
        role: pair.localSite,
        h1Volume: pair.h1Volume,
        h2Volume: pair.h2Volume,
        step: `remove it from session ${session.name}`,
        action,
      });
    }
    return found;
  }

  async createSession(name: string, type: SessionType, peer: string, options: { shipIntervalMs?: number } = {}): Promise<SessionRecord> {
    const service = this.service;
    const other = service.peers.get(peer);
    if (options.shipIntervalMs !== undefined && type !== 'snapshot-shipping') {
      throw new ProblemError('bad-request', `a ${type} session has no shipping interval; it is for snapshot-shipping sessions`);
    }
    for (const session of service.sessions.values()) {
      if (session.name === name) throw new ProblemError('already-exists', `a session named ${name} already exists`);
    }
    const now = new Date().toISOString();
    const session: SessionRecord = {
      id: randomUUID(),
      name,
      type,
      controlAgentId: service.agentId,
      peerAgentId: other.agentId,
      state: 'defined',
      direction: 'h1-h2',
      recoverable: false,
      detail: null,
      consistencyTime: null,
      shipIntervalMs: options.shipIntervalMs ?? null,
      lastVerify: null,
      createdAt: now,
      updatedAt: now,
    };
    await service.peers.link(other.agentId).call('session.put', { record: session }, null, { waitForLinkMs: 5000 });
    service.store.saveSession(session);
    service.sessions.set(session.id, session);
    service.engine.catalog.recordEvent('session.created', 'info', name, `created ${type} session ${name} with ${other.site}`);
    return session;
  }

  /**
   * Adds a copy set: a local (H1) volume and a volume of the same size at the
   * other site. With `primaryAgent` naming another paired agent, the H1
   * volume is that agent's (a multi-primary async session, see multi-primary.ts).
   */
  async addPair(sessionName: string, h1Volume: string, h2Volume: string, options: { primaryAgent?: string } = {}): Promise<HeldCopySet> {
    const service = this.service;
    if (options.primaryAgent !== undefined && options.primaryAgent !== service.agentId && options.primaryAgent !== service.site) {
      return service.multiPrimary.addMemberPair(sessionName, h1Volume, h2Volume, options.primaryAgent);
    }
    const session = service.session(sessionName);
    if (service.role(session).site !== 'h1') {
      throw new ProblemError('invalid-state', `add copy sets at ${session.name}'s H1 site, where it was defined`);
    }
    if (session.state !== 'defined' && !RunningCopySets.handles(session)) {
      throw new ProblemError(
        'invalid-state',
        `session ${session.name} is ${session.state}; copy sets are added while it is defined, preparing, prepared or suspended`,
      );
    }
    const local = service.engine.getVolume(h1Volume);
    for (const pair of service.pairs.values()) {
      if (pair.localVolumeId === local.id && !pair.broken) throw new ProblemError('volume-busy', `${h1Volume} is already in a copy set`);
    }
    const remote = await service.link(session).call('volume.size', { name: h2Volume }, null, { waitForLinkMs: 5000 });
    const remoteSize = (remote.result as { sizeBytes: number }).sizeBytes;
    if (remoteSize !== local.sizeBytes) {
      throw new ProblemError(
        'invalid-size',
        `${h1Volume} is ${local.sizeBytes} bytes but ${h2Volume} at the other site is ${remoteSize}; a copy set needs equal sizes`,
      );
    }
    const pair = newCopySet(session, service.agentId, h1Volume, h2Volume, randomUUID(), new Date().toISOString(), local.id);
    // A session that was started tracks and copies the new copy set at once, leaving the others as they are.
    if (session.state !== 'defined') return service.running.add(session, pair);
    await service.link(session).call('pair.put', { pair: atSecondary(pair) });
    service.store.saveCopySet(pair);
    service.pairs.set(pair.id, pair);
    service.refreshTaps();
    service.engine.catalog.recordEvent('pair.added', 'info', session.name, `copy set ${h1Volume} -> ${h2Volume} added to ${session.name}`);
    return pair;
  }

  /**
   * Removes a copy set named by its H1 volume. In a multi-primary session two
   * primary agents may hold volumes of the same name: `primaryAgent` (site
   * name or agent id; this agent for the control agent's own) picks one; a name held
   * by several without it is a `conflict` naming their sites.
   */
  async removePair(sessionName: string, h1Volume: string, options: { primaryAgent?: string } = {}): Promise<void> {
    const service = this.service;
    const session = service.session(sessionName);
    if (session.state !== 'defined' && !RunningCopySets.handles(session)) {
      throw new ProblemError(
        'invalid-state',
        `session ${session.name} is ${session.state}; copy sets are removed while it is defined, preparing, prepared or suspended`,
      );
    }
    const here = options.primaryAgent === undefined || options.primaryAgent === service.agentId || options.primaryAgent === service.site;
    if (!here) return service.multiPrimary.removeMemberPair(session, h1Volume, options.primaryAgent!);
    const pair = service.pairsOf(session).find((p) => p.h1Volume === h1Volume);
    const memberPairs = service.multiPrimary.memberCopySets(session).filter((p) => p.h1Volume === h1Volume);
    if (options.primaryAgent === undefined && memberPairs.length + (pair ? 1 : 0) > 1) {
      const sites = [...(pair ? [service.site] : []), ...memberPairs.map((p) => service.multiPrimary.siteOf(p.primaryAgentId))];
      throw new ProblemError(
        'conflict',
        `${h1Volume} names copy sets of session ${session.name} at ${sites.join(', ')}; name the site holding the one to remove (primaryAgent)`,
        { sites },
      );
    }
    if (!pair && memberPairs.length === 1 && options.primaryAgent === undefined) {
      return service.multiPrimary.removeMemberPair(session, h1Volume, memberPairs[0]!.primaryAgentId);
    }
    if (!pair) throw new ProblemError('not-found', `${h1Volume} is not in session ${session.name}${options.primaryAgent ? ` at ${service.site}` : ''}`);
    if (session.state !== 'defined') return service.running.remove(session, pair);
    await service.link(session).call('pair.remove', { pair: pair.id }, null, { waitForLinkMs: 5000 }).catch(() => {});
    this.forgetPair(pair);
  }

  forgetPair(pair: HeldCopySet): void {
    const service = this.service;
    service.mirroring.sources.get(pair.id)?.dispose();
    service.mirroring.sources.delete(pair.id);
    for (const bitmap of [pair.outOfSyncBitmap, pair.targetChangedBitmap]) {
      if (bitmap !== null) void service.engine.bitmaps.delete(bitmap).catch(() => {});
    }
    service.store.deleteCopySet(pair.id);
    service.pairs.delete(pair.id);
    service.refreshTaps();
    const session = service.sessions.get(pair.sessionId);
    service.engine.catalog.recordEvent(
      'pair.removed',
      'info',
      session?.name ?? pair.sessionId,
      `copy set ${pair.h1Volume} -> ${pair.h2Volume} removed from session ${session?.name ?? pair.sessionId}; ${pair.localVolume} is no longer mirrored`,
      { pair: pair.id, h1Volume: pair.h1Volume, h2Volume: pair.h2Volume, sessionState: session?.state ?? null },
    );
  }

  /** Makes a session record the other site sent (session.put). */
  adoptSession(record: SessionRecord): void {
    const service = this.service;
    const existing = service.sessions.get(record.id);
    if (existing) return;
    for (const session of service.sessions.values()) {
      if (session.name === record.name) throw new ProblemError('already-exists', `a session named ${record.name} exists here`);
    }
    const session = { ...record };
    service.store.saveSession(session);
    service.sessions.set(session.id, session);
    service.engine.catalog.recordEvent('session.created', 'info', session.name, `session ${session.name} defined by the other site`);
  }

  /**
   * Takes a copy set the other site defined (`pair.put`, `pair.attach`,
   * multi-primary joins): its volume here by this site's own id for it. A
   * copy set known already keeps the volume it holds (and a broken one stays broken).
   */
  adoptPair(incoming: CopySetOnTheWire): HeldCopySet {
    const service = this.service;
    const local = service.engine.getVolume(incoming.localVolume);
    const session = service.session(incoming.sessionId);
    const known = service.pairs.get(incoming.id);
    for (const pair of service.pairs.values()) {
      if (pair.localVolumeId === local.id && !pair.broken && pair.id !== incoming.id) {
        throw new ProblemError('volume-busy', `${incoming.localVolume} is already in a copy set`);
      }
    }
    const record: HeldCopySet = {
      ...incoming,
      // Agents of peer protocol 1.0 send no agents with a copy set: its primary is this agent where its H1 volume is
      // here, else the session's control agent (the other primary agents' copy sets come with `mp.secondary-pair`).
      primaryAgentId: incoming.primaryAgentId ?? (incoming.localSite === 'h1' ? service.agentId : session.controlAgentId),
      secondaryAgentId: incoming.secondaryAgentId ?? session.peerAgentId,
      localVolumeId: known ? known.localVolumeId : local.id,
      broken: known?.broken ?? null,
    };
    service.store.saveCopySet(record);
    service.pairs.set(record.id, record);
    service.refreshTaps();
    return record;
  }
}
