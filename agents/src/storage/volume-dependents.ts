import { ProblemError, type VolumeDependent } from '@tandem/contract';

/** What a destructive call on a volume is: guards say what depends on the volume for it. */
export type VolumeAction = 'delete' | 'resize';

/** Asked before a volume or snapshot is deleted or resized: what depends on it (nothing: an empty list). */
export type VolumeGuard = (name: string, action: VolumeAction) => VolumeDependent[];

function what(name: string, dependent: VolumeDependent): string {
  switch (dependent.kind) {
    case 'copy-set':
      return `${name} is the ${dependent.role === 'h1' ? 'primary (H1)' : 'secondary (H2)'} volume of copy set ${dependent.h1Volume} -> ${dependent.h2Volume} in session ${dependent.session} (${dependent.sessionState})`;
    case 'flash-copy':
      return `${name} is the ${dependent.role} of flash copy session ${dependent.session} (${dependent.sessionState})`;
    case 'nbd-export':
      return `${name} is open by ${dependent.connections} NBD connection(s)`;
    case 'shipping-snapshot':
      return `${name} is kept by snapshot-shipping session ${dependent.session} (${dependent.sessionState}): the source-side image of the cycle it shipped last, or ships now`;
    case 'cdp-journal':
      return `${name} is a replica volume of session ${dependent.session} with a journal (its points in time and bookmarks)`;
  }
}

/**
 * The refusal of a delete or resize of `name` while something depends on
 * it: `volume-busy`, naming the first dependent and the step to take first,
 * every dependent in `detail.dependents` (VolumeBusyDetailSchema). Nothing
 * was changed.
 */
export function volumeBusy(name: string, action: VolumeAction, dependents: VolumeDependent[]): ProblemError {
  const [first, ...more] = dependents;
  const then =
    action === 'delete' ? 'delete it' : first.kind === 'copy-set' ? 'resize it (both volumes of a copy set keep one size)' : 'resize it';
  const others = more.length > 0 ? ` (and ${more.length} more dependent(s): ${more.map((each) => each.kind).join(', ')})` : '';
  return new ProblemError('volume-busy', `${what(name, first)}${others}; ${first.step} first (${first.action}), then ${then}`, {
    dependents,
  });
}
