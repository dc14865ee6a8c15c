import { z } from 'zod';

/**
 * Stable problem codes. Every error that crosses a boundary (control API,
 * console backend, CLI, NBD logs, peer link) carries one of these plus a
 * human message. Codes never change meaning once released.
 */
export const problemCodes = [
  'bad-request',
  'invalid-name',
  'invalid-size',
  'invalid-threshold',
  'not-found',
  'already-exists',
  'unauthenticated',
  'access-denied',
  'forbidden-role',
  'token-invalid',
  'volume-busy',
  'volume-has-snapshots',
  'no-space',
  'out-of-range',
  'read-only',
  'not-supported',
  'conflict',
  'agent-unreachable',
  'certificate-mismatch',
  'link-down',
  'peer-refused',
  'peer-version',
  'not-paired',
  'pair-suspended',
  'pair-broken',
  'stale-stream',
  'invalid-state',
  'timeout',
  'internal-error',
] as const;

export const ProblemCodeSchema = z.enum(problemCodes);
export type ProblemCode = z.infer<typeof ProblemCodeSchema>;

/** The body of every error answer: `{problem, message}`. */
export const ProblemSchema = z.object({
  problem: ProblemCodeSchema,
  message: z.string(),
  detail: z.record(z.string(), z.unknown()).optional(),
});
export type Problem = z.infer<typeof ProblemSchema>;

/** HTTP status that goes with each problem code. */
export const problemHttpStatus: Record<ProblemCode, number> = {
  'bad-request': 400,
  'invalid-name': 400,
  'invalid-size': 400,
  'invalid-threshold': 400,
  'not-found': 404,
  'already-exists': 409,
  unauthenticated: 401,
  'access-denied': 403,
  /** The caller's certificate carries a role below the one the route needs; `detail: {needed, held}`. */
  'forbidden-role': 403,
  'token-invalid': 403,
  'volume-busy': 409,
  'volume-has-snapshots': 409,
  'no-space': 507,
  'out-of-range': 416,
  'read-only': 409,
  'not-supported': 501,
  conflict: 409,
  'agent-unreachable': 502,
  'certificate-mismatch': 502,
  'link-down': 503,
  'peer-refused': 502,
  'peer-version': 502,
  'not-paired': 409,
  'pair-suspended': 409,
  'pair-broken': 409,
  'stale-stream': 409,
  'invalid-state': 409,
  timeout: 504,
  'internal-error': 500,
};

/** An error that carries a problem code; thrown inside the agent and the backend. */
export class ProblemError extends Error {
  readonly problem: ProblemCode;
  readonly detail?: Record<string, unknown>;

  constructor(problem: ProblemCode, message: string, detail?: Record<string, unknown>) {
    super(message);
    this.name = 'ProblemError';
    this.problem = problem;
    this.detail = detail;
  }

  toJSON(): Problem {
    return this.detail
      ? { problem: this.problem, message: this.message, detail: this.detail }
      : { problem: this.problem, message: this.message };
  }
}

export function isProblemError(value: unknown): value is ProblemError {
  return value instanceof ProblemError;
}
