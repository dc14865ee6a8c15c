import type { IncomingMessage } from 'node:http';
import { z } from 'zod';
import { ProblemError, type ProblemCode } from '@tandem/contract';

export interface RouteContext {
  params: Record<string, string>;
  query: URLSearchParams;
  /** The parsed JSON body: untrusted until a schema says otherwise. */
  body: unknown;
}

export interface RouteResult {
  status?: number;
  body?: unknown;
}

export type RouteHandler = (context: RouteContext) => Promise<RouteResult>;

interface Route {
  method: string;
  segments: string[];
  handler: RouteHandler;
}

/** A small method + path router for the backend's JSON API. */
export class Router {
  private readonly routes: Route[] = [];

  add(method: string, pattern: string, handler: RouteHandler): this {
    this.routes.push({ method, segments: pattern.split('/').filter(Boolean), handler });
    return this;
  }

  match(method: string, pathname: string): { handler: RouteHandler; params: Record<string, string> } | 'wrong-method' | undefined {
    const parts = pathname.split('/').filter(Boolean);
    let pathMatched = false;
    for (const route of this.routes) {
      const params = matchSegments(route.segments, parts);
      if (!params) continue;
      pathMatched = true;
      if (route.method === method) return { handler: route.handler, params };
    }
    return pathMatched ? 'wrong-method' : undefined;
  }
}

function matchSegments(pattern: string[], parts: string[]): Record<string, string> | undefined {
  if (pattern.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (let index = 0; index < pattern.length; index++) {
    const expected = pattern[index];
    let actual: string;
    try {
      actual = decodeURIComponent(parts[index]);
    } catch {
      return undefined;
    }
    if (expected.startsWith(':')) params[expected.slice(1)] = actual;
    else if (expected !== actual) return undefined;
  }
  return params;
}

const maxBodyBytes = 1024 * 1024;

/** Reads a JSON request body (at most 1 MiB). */
export async function readJsonBody(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > maxBodyBytes) throw new ProblemError('bad-request', 'the request body is larger than 1 MiB');
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new ProblemError('bad-request', 'the request body is not valid JSON');
  }
}

/** Fields whose refused (well-typed) values have a problem code of their own, as at the agent (agents/src/api/errors.ts). */
const fieldProblems: Record<string, ProblemCode> = {
  name: 'invalid-name',
  sizeBytes: 'invalid-size',
  rpoTargetSeconds: 'invalid-threshold',
  linkDownSeconds: 'invalid-threshold',
  backlogPercent: 'invalid-threshold',
  poolFullPercent: 'invalid-threshold',
  sessionDefaults: 'invalid-threshold',
};

/** Validates untrusted input; a failure becomes a `bad-request` problem naming the first issue (or the field's own code). */
export function parseInput<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
  const fieldProblem = fieldProblems[String(issue?.path[0])] ?? 'bad-request';
  // A threshold of the wrong JSON type is a malformed request, as at the agent.
  const problem = fieldProblem === 'invalid-threshold' && issue?.code === 'invalid_type' ? 'bad-request' : fieldProblem;
  throw new ProblemError(problem, `${where}${issue?.message ?? 'invalid input'}`);
}
