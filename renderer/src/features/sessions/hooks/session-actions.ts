import type { SessionAction, SessionInfo, SessionState } from '@tandem/contract';
import { copyingPairs, primarySites, receivingSites, sourceSite } from './session-model.ts';

/** What an action button does, in words shown before anything happens. */
export interface ActionPlan {
  action: SessionAction;
  label: string;
  title: string;
  /** What will happen, in the session's own site names. */
  consequence: string;
  /** Extra warnings shown in an alert. */
  warnings: string[];
  color: string;
  /** Dangerous: needs an acknowledgement (failover) or the typed name (terminate). */
  confirm: 'button' | 'acknowledge' | 'type-name';
}

const allowedStates: Record<SessionAction, SessionState[]> = {
  start: ['defined'],
  suspend: ['preparing', 'prepared'],
  resume: ['suspended'],
  recover: ['suspended', 'prepared', 'preparing', 'recovering'],
  failback: ['target-available'],
  terminate: ['defined', 'preparing', 'prepared', 'suspending', 'suspended', 'recovering', 'target-available'],
};

export function isAllowed(session: SessionInfo, action: SessionAction): boolean {
  return allowedStates[action].includes(session.state);
}

/** The plan of one action for a session (the words depend on its current direction). */
export function actionPlan(session: SessionInfo, action: SessionAction): ActionPlan {
  // Multi-primary sessions: every site holding primary volumes sends (H1->H2) or receives (after a failback).
  const source = session.direction === 'h1-h2' ? primarySites(session).join(', ') : sourceSite(session);
  const target = receivingSites(session).join(', ');
  const copies = `${session.pairs.length} copy set${session.pairs.length === 1 ? '' : 's'}`;
  switch (action) {
    case 'start':
      return {
        action,
        label: 'Start',
        title: `Start ${session.name}?`,
        consequence: `Start copies every allocated track of the ${copies} from ${source} to ${target}, then mirrors each write (${session.type}). The volumes at ${target} are overwritten and stay read-only for hosts until a recover.`,
        warnings: [],
        color: 'blue',
        confirm: 'button',
      };
    case 'suspend':
      return {
        action,
        label: 'Suspend',
        title: `Suspend ${session.name}?`,
        consequence: `Suspend stops mirroring from ${source} to ${target}. Writes at ${source} go on and are marked out-of-sync; ${target} keeps the consistent image of the moment of suspension. Resume copies only the marked tracks.`,
        warnings: [],
        color: 'yellow',
        confirm: 'button',
      };
    case 'resume':
      return {
        action,
        label: 'Resume',
        title: `Resume ${session.name}?`,
        consequence: `Resume copies the tracks marked out-of-sync from ${source} to ${target}, then mirrors again; the session returns to Prepared when they are copied.`,
        warnings: [],
        color: 'blue',
        confirm: 'button',
      };
    case 'recover':
      return {
        action,
        label: 'Recover (failover)…',
        title: `Fail over ${session.name} to ${target}?`,
        consequence: `Recover makes the copy volumes writable at ${target}; ${source}'s changes after now will be copied back only by failback. Mirroring stops, and every write at ${target} is tracked so that failback copies only what changed.`,
        warnings: [
          `Stop the applications writing at ${source} first: writes there after now do not reach ${target}.`,
          ...(session.state === 'preparing' ? [`The initial copy is not finished: the volumes at ${target} are not yet a consistent image.`] : []),
          // A copy set still joining (its initial copy runs: state syncing, or reported not consistent at the target) fails over with the others, unusable.
          ...copyingPairs(session).map(
            (pair) =>
              `Copy set ${pair.h1Volume} → ${pair.h2Volume} is still ${pair.state === 'syncing' ? `syncing${pair.syncedPercent !== null ? ` (${Math.floor(pair.syncedPercent)} % copied)` : ''}` : 'in its initial copy'}: ` +
              `after the failover its target ${target}:${pair.h2Volume} is not a consistent image. Wait until it is duplex if you can.`,
          ),
          ...(session.consistencyTime ? [] : [`${target} has no consistency time yet.`]),
        ],
        color: 'red',
        confirm: 'acknowledge',
      };
    case 'failback':
      return {
        action,
        label: 'Failback…',
        title: `Fail back ${session.name}`,
        consequence: `Failback copies the tracks changed at ${target} (and those ${source} never sent) back to ${source}, and reverses the direction: ${target} becomes the source.`,
        warnings: [],
        color: 'grape',
        confirm: 'button',
      };
    case 'terminate':
      return {
        action,
        label: 'Terminate…',
        title: `Terminate ${session.name}?`,
        consequence: `Terminate ends mirroring between ${session.h1Site} and ${session.h2Site} and drops the out-of-sync and target-changed bitmaps. The volumes keep their data; starting again copies everything.`,
        warnings: [],
        color: 'red',
        confirm: 'type-name',
      };
  }
}

/** The actions offered on a session card, in order (failback opens its wizard instead of a confirmation). */
export function availableActions(session: SessionInfo): ActionPlan[] {
  const order: SessionAction[] = ['start', 'resume', 'suspend', 'recover', 'failback', 'terminate'];
  return order.filter((action) => isAllowed(session, action)).map((action) => actionPlan(session, action));
}
