import { randomUUID } from 'node:crypto';
import { ProblemError, type SessionType, type VolumeDependent } from '@tandem/contract';
import { RunningCopySets } from './running-copy-sets.ts';
import type { ReplicationHooks } from './hooks.ts';
import { atSecondary, heldElsewhere, newCopySet, type CopySetOnTheWire, type HeldCopySet, type SessionRecord } from './session-store.ts';

/** What copy-sets uses of the service and the other parts (hooks.ts). */
export type CopySetsHooks = Pick<
  ReplicationHooks,
  'agentId' | 'engine' | 'link' | 'mirroring' | 'multiPrimary' | 'pairs' | 'peers' | 'refreshTaps' | 'role' | 'running' | 'session' | 'sessions' | 'site' | 'store'
>;

/** A session's copy set that uses a volume, as a delete or resize refusal names it (VolumeDependentSchema `copy-set`). */
export type CopySetDependent = Extract<VolumeDependent, { kind: 'copy-set' }>;

/** Defining sessions and their copy sets at both sites. */
export class CopySets {
  constructor(private readonly service: CopySetsHooks) {
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
   * Adds a copy set: an H1 volume and a volume of the same size at the
   * secondary site. The H1 volume is this agent's, or with `primaryAgent`
   * naming another paired agent (site name or agent id) that agent's (a
   * multi-primary async session, see multi-primary.ts). One path for both:
   * sizes asked of the agents holding the volumes; a session that was
   * started tracks and copies it at once (running-copy-sets.ts).
   */
  async addPair(sessionName: string, h1Volume: string, h2Volume: string, options: { primaryAgent?: string } = {}): Promise<HeldCopySet> {
    const service = this.service;
    const session = service.session(sessionName);
    if (!service.role(session).control) {
      throw new ProblemError('invalid-state', `add copy sets at ${session.name}'s control agent, the agent where it was defined`);
    }
    if (session.state !== 'defined' && !RunningCopySets.handles(session)) {
      throw new ProblemError(
        'invalid-state',
        `session ${session.name} is ${session.state}; copy sets are added while it is defined, preparing, prepared or suspended`,
      );
    }
    const here = isThisAgent(service, options.primaryAgent);
    const primary = here ? { agentId: service.agentId, site: service.site } : service.peers.get(options.primaryAgent!);
    if (!here && session.type !== 'async') {
      throw new ProblemError(
        'not-supported',
        `session ${session.name} is ${session.type}; copy sets with their primary on another agent need an async session`,
      );
    }
    if (primary.agentId === session.peerAgentId) {
      throw new ProblemError('bad-request', `${primary.site} is the secondary site of ${session.name}; it cannot also hold a primary volume`);
    }
    const local = here ? service.engine.getVolume(h1Volume) : null;
    const taken = here
      ? [...service.pairs.values()].some((pair) => pair.localVolumeId === local!.id && !pair.broken)
      : service.multiPrimary.memberCopySets(session).some((pair) => pair.primaryAgentId === primary.agentId && pair.h1Volume === h1Volume);
    if (taken) throw new ProblemError('volume-busy', `${here ? '' : `${primary.site}:`}${h1Volume} is already in a copy set`);
    const sizeAt = async (agent: string, name: string) => {
      const answer = await service.peers.link(agent).call('volume.size', { name }, null, { waitForLinkMs: 5000 });
      return answer.result.sizeBytes;
    };
    const [h1Size, h2Size] = await Promise.all([local?.sizeBytes ?? sizeAt(primary.agentId, h1Volume), sizeAt(session.peerAgentId, h2Volume)]);
    if (h1Size !== h2Size) {
      throw new ProblemError(
        'invalid-size',
        `${h1Volume}${here ? '' : ` at ${primary.site}`} is ${h1Size} bytes but ${h2Volume} at the secondary is ${h2Size}; a copy set needs equal sizes`,
      );
    }
    // Another agent's volume is known here by no id (that agent adopts the copy set with `mp.join`).
    const pair = newCopySet(session, primary.agentId, h1Volume, h2Volume, randomUUID(), new Date().toISOString(), local?.id ?? null);
    if (session.state !== 'defined') return service.running.add(session, pair);
    // Defined: the secondary and the primary agent learn it; nothing is tracked until the session starts.
    if (here) {
      await service.link(session).call('pair.put', { pair: atSecondary(pair) });
      service.store.saveCopySet(pair);
      service.pairs.set(pair.id, pair);
      service.refreshTaps();
    } else {
      const primaryLink = service.peers.link(primary.agentId);
      await primaryLink.call('mp.join', { record: session, pair }, null, { waitForLinkMs: 5000 });
      try {
        const record = heldElsewhere(pair);
        await service.link(session).call('mp.secondary-pair', { pair: atSecondary(pair) });
        service.store.saveCopySet(record);
      } catch (error) {
        await primaryLink.call('pair.remove', { pair: pair.id }, null, { waitForLinkMs: 2000 }).catch(() => {});
        throw error;
      }
    }
    const where = here ? '' : `${primary.site}:`;
    service.engine.catalog.recordEvent('pair.added', 'info', session.name, `copy set ${where}${h1Volume} -> ${h2Volume} added to ${session.name}${here ? '' : ` (primary at ${primary.site})`}`, {
      pair: pair.id,
      h1Volume,
      h2Volume,
      ...(here ? {} : { primarySite: primary.site }),
    });
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
    const primaryAgentId = options.primaryAgent === undefined ? undefined : isThisAgent(service, options.primaryAgent) ? service.agentId : service.peers.get(options.primaryAgent).agentId;
    // The control agent keeps every copy set of the session (the other primary agents' without local fields).
    const named = service.store.copySetsOf(session.id).filter((pair) => pair.h1Volume === h1Volume && (primaryAgentId === undefined || pair.primaryAgentId === primaryAgentId));
    if (named.length > 1) {
      const sites = named.map((pair) => service.multiPrimary.siteOf(pair.primaryAgentId));
      throw new ProblemError(
        'conflict',
        `${h1Volume} names copy sets of session ${session.name} at ${sites.join(', ')}; name the site holding the one to remove (primaryAgent)`,
        { sites },
      );
    }
    const record = named[0];
    if (!record) {
      const site = primaryAgentId === undefined ? '' : ` at ${service.multiPrimary.siteOf(primaryAgentId)}`;
      throw new ProblemError('not-found', `${h1Volume} is not in session ${session.name}${site}`);
    }
    if (session.state !== 'defined') return service.running.remove(session, record);
    // Defined: nothing is tracked; the agents holding its volumes forget it.
    const pair = service.pairs.get(record.id);
    if (!pair) await service.peers.link(record.primaryAgentId).call('pair.remove', { pair: record.id }, null, { waitForLinkMs: 5000 }).catch(() => {});
    await service.link(session).call('pair.remove', { pair: record.id }, null, { waitForLinkMs: 5000 }).catch(() => {});
    if (pair) this.forgetPair(pair);
    else service.store.deleteCopySet(record.id);
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
      localVolumeId: known ? known.localVolumeId : local.id,
      broken: known?.broken ?? null,
    };
    service.store.saveCopySet(record);
    service.pairs.set(record.id, record);
    service.refreshTaps();
    return record;
  }
}

/** A `primaryAgent` option naming this agent (absent, its id or its site name). */
function isThisAgent(service: CopySetsHooks, primaryAgent: string | undefined): boolean {
  return primaryAgent === undefined || primaryAgent === service.agentId || primaryAgent === service.site;
}
