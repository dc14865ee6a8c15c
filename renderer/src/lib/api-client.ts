import type { z } from 'zod';
import { ProblemSchema, type Problem, type ProblemCode } from '@tandem/contract';
import type { BackendEndpoint } from '../../../main/src/shared/console-api.ts';

/** A failed call to the console backend, with the problem code and message to show. */
export class ApiProblem extends Error {
  readonly problem: ProblemCode;
  readonly status: number;
  readonly detail?: Record<string, unknown>;

  constructor(status: number, body: Problem) {
    super(body.message);
    this.name = 'ApiProblem';
    this.problem = body.problem;
    this.status = status;
    this.detail = body.detail;
  }
}

export interface ApiClient {
  get<T extends z.ZodType>(path: string, schema: T): Promise<z.infer<T>>;
  send<T extends z.ZodType>(method: 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, body: unknown, schema: T): Promise<z.infer<T>>;
  /** A call whose answer carries nothing (204). */
  perform(method: 'POST' | 'DELETE', path: string, body?: unknown): Promise<void>;
}

/** Calls the backend's JSON API with the bearer token; answers are validated, failures become ApiProblem. */
export function createApiClient(endpoint: BackendEndpoint, fetchImpl: typeof fetch = fetch): ApiClient {
  async function request(method: string, path: string, body?: unknown): Promise<unknown> {
    let response: Response;
    try {
      response = await fetchImpl(`${endpoint.url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${endpoint.token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ApiProblem(0, { problem: 'agent-unreachable', message: 'the console backend does not answer; is `npm start` still running?' });
    }
    const text = await response.text();
    const json: unknown = text ? JSON.parse(text) : undefined;
    if (!response.ok) {
      const problem = ProblemSchema.safeParse(json);
      throw new ApiProblem(
        response.status,
        problem.success ? problem.data : { problem: 'internal-error', message: `the console backend answered HTTP ${response.status}` },
      );
    }
    return json;
  }

  function validated<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> {
    const parsed = schema.safeParse(value);
    if (!parsed.success) throw new ApiProblem(500, { problem: 'internal-error', message: 'the console backend sent an answer this console does not understand' });
    return parsed.data;
  }

  return {
    get: async (path, schema) => validated(schema, await request('GET', path)),
    send: async (method, path, body, schema) => validated(schema, await request(method, path, body)),
    perform: async (method, path, body) => {
      await request(method, path, body);
    },
  };
}

/** The text to show for any error: `problem-code: message`. */
export function describeError(error: unknown): { problem: string; message: string } {
  if (error instanceof ApiProblem) return { problem: error.problem, message: error.message };
  if (error instanceof Error) return { problem: 'internal-error', message: error.message };
  return { problem: 'internal-error', message: String(error) };
}
