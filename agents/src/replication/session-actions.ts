import { ProblemError, type RoundCommit, type SessionAction, type SessionActionOptions, type SessionInfo, type SessionState } from '@tandem/contract';
import type { ReplicationHooks } from './hooks.ts';
import type { SessionRecord } from './session-store.ts';
import { localVolumeId } from './copy-set-volumes.ts';

/** What session-actions uses of the service and the other parts (hooks.ts). */
export type SessionActionsHooks = Pick<
  ReplicationHooks,
  'applier' | 'copySetVolumes' | 'engine' | 'failback' | 'info' | 'joining' | 'journals' | 'link' | 'mirroring' | 'multiPrimary' | 'pairsOf' | 'peers' | 'pushState' | 'receiver' | 'role' | 'session' | 'setState' | 'store'
>;

/** Which site executes an action: the source of the current direction, or its target. */
function executingRole(action: SessionAction): 'source' | 'target' {
  return action === 'recover' || action === 'failback' ? 'target' : 'source';
}

const allowed: Record<SessionAction, SessionState[]> = {
  start: ['defined'],
  suspend: ['preparing', 'prepared'],
  resume: ['suspended'],
  recover: ['suspended', 'prepared', 'preparing', 'recovering'],
  failback: ['target-available'],
  terminate: ['defined', 'preparing', 'prepared', 'suspending', 'suspended', 'recovering', 'target-available'],
};

/**
 * The session actions of the state machine: start, suspend, resume, recover
 * (failover), failback and terminate. A command may reach either site; it is
 * executed by the site that must act and forwarded otherwise.
 */
export class SessionActions {
  constructor(private readonly service: SessionActionsHooks) {}

  /** Runs an action here if this site must execute it, else forwards it to the other site. */
  async act(sessionName: string, action: SessionAction, options: SessionActionOptions = {}): Promise<SessionInfo> {
    const service = this.service;
    const session = service.session(sessionName);
    if (!allowed[action].includes(session.state)) {
      throw new ProblemError('invalid-state', `session ${session.name} is ${session.state}; ${action} needs ${allowed[action].join(' or ')}`);
    }
    // Every copy set takes part in these: a broken one (its volume gone) is removed first. A recover and a terminate still proceed.
    if (action === 'start' || action === 'resume' || action === 'failback') service.copySetVolumes.refuseIfBroken(session);
    try {
      return await this.dispatch(session, action, options);
    } catch (error) {
      // The other site refused a copy set whose volume there is gone: recorded here too.
      service.copySetVolumes.learn(error);
      throw error;
    }
  }

  /** The agent that executes an action of this session (null: this one; see `executingRole`). */
  executor(session: SessionRecord, action: SessionAction): string | null {
    const role = this.service.role(session);
    if (role.member) {
      // A multi-primary session's state machine runs at its control agent (terminate) or at the site that must act:
      // the source of the current direction (control agent H1->H2, secondary site H2->H1), or its target.
      const atSource = executingRole(action) === 'source' === (session.direction === 'h1-h2');
      return action === 'terminate' || atSource ? session.controlAgentId : session.peerAgentId;
    }
    return executingRole(action) === (role.source ? 'source' : 'target') || action === 'terminate' ? null : role.otherAgent;
  }

  private async dispatch(session: SessionRecord, action: SessionAction, options: SessionActionOptions): Promise<SessionInfo> {
    const service = this.service;
    const executor = this.executor(session, action);
    if (executor === null) await this.execute(session, action, options);
    else {
      await service.peers.link(executor).call('session.action', { session: session.id, action, options }, null, {
        waitForLinkMs: 3000,
        timeoutMs: 10 * 60_000,
      });
    }
    return service.info(session);
  }

  /** Executes an action at this site (see `executingRole`). */
  async execute(session: SessionRecord, action: SessionAction, options: SessionActionOptions): Promise<void> {
    const service = this.service;
    const engine = service.engine;
    // (Also when the other site forwarded it: it may not know the copy set broke here.)
    if (action === 'start' || action === 'resume' || action === 'failback') service.copySetVolumes.refuseIfBroken(session);
    switch (action) {
      case 'start': {
        for (const pair of service.pairsOf(session)) {
          if (pair.outOfSyncBitmap === null) {
            pair.outOfSyncBitmap = await engine.bitmaps.create(localVolumeId(engine, pair), 'allocated');
            service.store.saveCopySet(pair);
          }
        }
        // The target starts from zeroes: tracks unallocated here then match without a copy.
        await service.link(session).call('session.prepare-target', { session: session.id }, null, { waitForLinkMs: 5000 });
        service.setState(session, 'preparing', { detail: null });
        void service.mirroring.runMirroring(session);
        return;
      }
      case 'resume':
        service.setState(session, 'preparing', { detail: null });
        void service.mirroring.runMirroring(session);
        return;
      case 'suspend':
        service.setState(session, 'suspending', {}, false);
        await service.mirroring.stopSource(session, null);
        service.setState(session, 'suspended', {
          detail: null,
          // A shipping target holds the last committed cycle, not the image of now.
          consistencyTime: session.type === 'snapshot-shipping' ? session.consistencyTime : new Date().toISOString(),
        });
        return;
      case 'recover':
        await this.recoverHere(session, options);
        return;
      case 'failback':
        await service.failback.failbackHere(session, { verifyCodes: options.verifyCodes ?? true, fullCompare: options.fullCompare ?? false });
        return;
      case 'terminate':
        // Every other primary agent of a multi-primary session (told by its control agent or by its secondary site).
        if (service.role(session).multiPrimary) await service.multiPrimary.terminateMembers(session);
        await this.terminateHere(session);
        await service
          .link(session)
          .call('session.terminated', { session: session.id }, null, { waitForLinkMs: 2000 })
          .catch(() => {});
        return;
    }
  }

  /**
   * Failover: this site (the target) becomes writable and tracks what changes here. Every primary agent of a
   * session recovered at H1 runs it: a member when its control agent recovers it (`mp.recover`, `given` the newest
   * commit). `options`: a journal point to recover at (a member gets none: its journal, if any, ends at the newest image).
   */
  async recoverHere(session: SessionRecord, options: SessionActionOptions = {}, given: RoundCommit | null = null): Promise<void> {
    const service = this.service;
    // A point names an image of the journal here: refused before anything changes when there is none.
    service.journals.checkRecover(session, options);
    service.setState(session, 'recovering', {}, false);
    // The source stops mirroring if it still can be told (by the control agent); the target refuses its writes anyway from now.
    if (!service.role(session).member) {
      await service
        .link(session)
        .call('session.stop-source', { session: session.id }, null, { waitForLinkMs: 1000, timeoutMs: 10_000 })
        .catch(() => {});
    }
    // An uncommitted shipping cycle is dropped: the volumes keep the last committed image.
    if (session.type === 'snapshot-shipping') await service.receiver.discard(session.id);
    // A multi-primary session recovered at its H1 side (H2->H1): every H1 agent first applies the newest round committed at any of them.
    const multi = service.multiPrimary;
    const commit = await service.failback.rollForward(session, given);
    // Staged parts of rounds the coordinator never committed are dropped: the volumes keep the last committed round.
    if (session.type === 'async') await service.applier.discardParts(session.id);
    for (const pair of service.pairsOf(session)) {
      // A broken copy set has no volume here to track: reported as failed, the others recover.
      if (service.copySetVolumes.isBroken(pair)) continue;
      if (pair.targetChangedBitmap === null) {
        pair.targetChangedBitmap = await service.engine.bitmaps.create(localVolumeId(service.engine, pair), 'clear');
        service.store.saveCopySet(pair);
      }
    }
    // A journal here ends (the replica takes host writes now); at a point, the tracks rolled back differ from H1: the failback copies them.
    const journal = await service.journals.recoverAt(session, options, async (volume, tracks) => {
      const pair = service.pairsOf(session).find((each) => each.localVolume === volume);
      if (!pair?.targetChangedBitmap) return;
      for (const track of tracks) await service.engine.bitmaps.set(pair.targetChangedBitmap, track, 1);
    });
    // A multi-primary session recovered at its H1 side (H2->H1): every member's volumes become writable too.
    if (service.role(session).controlsMembers) await service.failback.recoverMembers(session, commit);
    // Copy sets whose initial copy had not completed: their volumes here are no consistent image (reported per copy set).
    const inconsistent = service.pairsOf(session).filter((pair) => service.joining.initialCopyPending(pair));
    for (const pair of inconsistent) {
      const site = multi.primarySiteOf(pair);
      service.engine.catalog.recordEvent(
        'pair.inconsistent',
        'warning',
        session.name,
        `session ${session.name} recovered while copy set ${site ? `${site}:` : ''}${pair.h1Volume} -> ${pair.h2Volume} was still in its initial copy: ${pair.localVolume} is not a consistent image; a failback copies every track not copied yet`,
        { pair: pair.id, h1Volume: pair.h1Volume, h2Volume: pair.h2Volume, ...(site ? { primarySite: site } : {}), reason: 'initial-copy-incomplete' },
      );
    }
    // Writable here from this state on (the taps follow it); the recover completes once the other sites were told
    // (every primary agent of a multi-primary session), so every reachable site shows target-available when it returns.
    service.setState(
      session,
      'target-available',
      {
        detail: inconsistent.length
          ? `${inconsistent.length} copy set(s) recovered during their initial copy are not consistent: ${inconsistent.map((pair) => pair.h2Volume).join(', ')}`
          : null,
        // Recovered at a journal point: the image is of that time.
        consistencyTime: journal?.point ? journal.point.time : (session.consistencyTime ?? new Date().toISOString()),
      },
      false,
    );
    await service.pushState(session);
  }

  /** Terminate at this site: mirroring stops, bitmaps are dropped, the session is defined again. */
  async terminateHere(session: SessionRecord): Promise<void> {
    const service = this.service;
    await service.mirroring.stopSource(session, null);
    service.mirroring.dropSources(session);
    if (session.type === 'snapshot-shipping') await service.receiver.discard(session.id);
    if (session.type === 'async') await service.applier.discardParts(session.id);
    await service.mirroring.dropBitmaps(session);
    service.setState(session, 'defined', { detail: null, consistencyTime: null }, false);
  }
}
