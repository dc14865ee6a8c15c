import { ProblemError } from '@tandem/contract';

/** A string parameter of a peer request; anything else is a `bad-request` naming the key. */
export function str(params: Record<string, unknown>, key: string): string {
  const value = params[key];
  if (typeof value !== 'string') throw new ProblemError('bad-request', `peer request: ${key} must be a string`);
  return value;
}

/** A non-negative safe-integer parameter of a peer request; anything else is a `bad-request` naming the key. */
export function num(params: Record<string, unknown>, key: string): number {
  const value = params[key];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new ProblemError('bad-request', `peer request: ${key} must be a non-negative integer`);
  }
  return value;
}
