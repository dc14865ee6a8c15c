import { isProblemError } from '@tandem/contract';
import { NBD_EINVAL, NBD_EIO, NBD_ENOSPC, NBD_EPERM } from './protocol.ts';

/**
 * Maps an error thrown by a BlockDevice to an NBD error value.
 * `writing` selects ENOSPC for an out-of-range write, as the spec asks;
 * reads and queries past the end get EINVAL.
 */
export function nbdErrorFor(error: unknown, writing: boolean): number {
  if (!isProblemError(error)) return NBD_EIO;
  switch (error.problem) {
    case 'out-of-range':
      return writing ? NBD_ENOSPC : NBD_EINVAL;
    case 'read-only':
      return NBD_EPERM;
    case 'no-space':
      return NBD_ENOSPC;
    case 'bad-request':
    case 'not-supported':
      return NBD_EINVAL;
    default:
      return NBD_EIO;
  }
}

/** True when the error is a known, expected refusal rather than a fault. */
export function isExpectedRefusal(error: unknown): boolean {
  return isProblemError(error) && error.problem !== 'internal-error';
}

/** A short message safe to send to the client (never a stack). */
export function clientMessage(error: unknown): string {
  if (isProblemError(error)) return `${error.problem}: ${error.message}`;
  return 'I/O error';
}
