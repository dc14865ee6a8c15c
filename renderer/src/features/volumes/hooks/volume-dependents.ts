import { z } from 'zod';
import type { SessionInfo, SessionState } from '@tandem/contract';
import { ApiProblem } from '../../../lib/api-client.ts';

/** A volume's part in a mirror session's copy set at one site (from that site's own session list). */
export interface VolumeMirrorRole {
  session: string;
  sessionState: SessionState;
  /** H1: the primary volume of the copy set; H2: its secondary. */
  role: 'h1' | 'h2';
  h1Volume: string;
  h2Volume: string;
  /** The site and volume at the other end of the copy set. */
  otherSite: string;
  otherVolume: string;
  /** The session's H1 site (where copy sets are added and removed). */
  h1Site: string;
}

/**
 * Which volumes of a site are in copy sets, and as what, from the sessions
 * the site's agent lists (its `role` says which side it is; a multi-primary
 * session's copy sets whose primary is at another agent are not here).
 */
export function mirrorRoles(sessions: SessionInfo[], siteName: string): Map<string, VolumeMirrorRole[]> {
  const roles = new Map<string, VolumeMirrorRole[]>();
  const add = (volume: string, role: VolumeMirrorRole) => roles.set(volume, [...(roles.get(volume) ?? []), role]);
  for (const session of sessions) {
    for (const pair of session.pairs) {
      const base = { session: session.name, sessionState: session.state, h1Volume: pair.h1Volume, h2Volume: pair.h2Volume, h1Site: session.h1Site };
      if (session.role === 'h2') add(pair.h2Volume, { ...base, role: 'h2', otherSite: pair.primarySite ?? session.h1Site, otherVolume: pair.h1Volume });
      else if ((pair.primarySite ?? session.h1Site) === siteName) add(pair.h1Volume, { ...base, role: 'h1', otherSite: session.h2Site, otherVolume: pair.h2Volume });
    }
  }
  return roles;
}

/** A dependent a `volume-busy` refusal names (`detail.dependents`, contract: agents' CopySetDependent). */
const DependentSchema = z.object({
  kind: z.literal('copy-set'),
  session: z.string(),
  sessionState: z.string(),
  role: z.enum(['h1', 'h2']),
  h1Volume: z.string(),
  h2Volume: z.string(),
  action: z.string(),
});
export type CopySetDependent = z.infer<typeof DependentSchema>;

/** The copy sets a refused delete or resize names as depending on the volume (none for other refusals). */
export function refusalDependents(error: unknown): CopySetDependent[] {
  if (!(error instanceof ApiProblem) || error.problem !== 'volume-busy') return [];
  const parsed = z.array(DependentSchema).safeParse(error.detail?.dependents);
  return parsed.success ? parsed.data : [];
}

/** `secondary (H2) volume of copy set db → db-copy in session gold (prepared)` */
export function dependentText(dependent: Pick<CopySetDependent, 'role' | 'h1Volume' | 'h2Volume' | 'session' | 'sessionState'>): string {
  const role = dependent.role === 'h1' ? 'primary (H1)' : 'secondary (H2)';
  return `the ${role} volume of copy set ${dependent.h1Volume} → ${dependent.h2Volume} in session ${dependent.session} (${dependent.sessionState})`;
}
