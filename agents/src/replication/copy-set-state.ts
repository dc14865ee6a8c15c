import type { PairState, SessionState } from '@tandem/contract';

/**
 * What the copy set's source is doing, as the agent reporting it knows: the
 * agent running it (its PairSource) or the control agent of a multi-primary
 * session (another primary agent's last report to the cut coordinator).
 * - `target`: the reporting agent is the copy set's target in the session's direction;
 * - `stopped`: its source does not run (or stopped on a problem);
 * - `unreached`: it runs, but its other agent is not reached (link down, no report yet);
 * - `copying`: it copies (initial copy, resync, a shipping session's first cycle);
 * - `mirroring`: it mirrors every change.
 */
export type SourceActivity = 'target' | 'stopped' | 'unreached' | 'copying' | 'mirroring';

const BY_ACTIVITY = { stopped: 'suspended', unreached: 'connecting', copying: 'syncing', mirroring: 'duplex' } as const;

/**
 * A copy set's state from its session's state and, while the session
 * prepares or is prepared, what its source does (asked only then): the one
 * derivation for every copy set, held here or reported by another primary agent.
 */
export function copySetState(session: SessionState, activity: () => SourceActivity): Exclude<PairState, 'failed'> {
  switch (session) {
    case 'defined':
      return 'defined';
    case 'preparing':
    case 'prepared': {
      const now = activity();
      // The target knows its copy is complete once the session is prepared.
      if (now === 'target') return session === 'prepared' ? 'duplex' : 'syncing';
      return BY_ACTIVITY[now];
    }
    case 'target-available':
    case 'recovering':
      return 'target-available';
  }
  return 'suspended';
}
