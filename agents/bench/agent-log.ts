import fs from 'node:fs';

/** One API request as the agent's own (pino/fastify) log records it. */
export interface LoggedRequest {
  method: string;
  url: string;
  status: number;
  /** fastify's responseTime: request received to response sent, inside the agent, ms. */
  responseTime: number;
}

interface LogLine {
  component?: string;
  reqId?: string;
  req?: { method: string; url: string };
  res?: { statusCode: number };
  responseTime?: number;
}

/** The agent log's completed API requests, in completion order. */
export function loggedRequests(logFile: string): LoggedRequest[] {
  const pending = new Map<string, { method: string; url: string }>();
  const done: LoggedRequest[] = [];
  for (const line of fs.readFileSync(logFile, 'utf8').split('\n')) {
    if (!line.startsWith('{') || !line.includes('reqId')) continue;
    let entry: LogLine;
    try {
      entry = JSON.parse(line) as LogLine;
    } catch {
      continue;
    }
    if (!entry.reqId) continue;
    if (entry.req) pending.set(entry.reqId, entry.req);
    const req = pending.get(entry.reqId);
    if (entry.res && typeof entry.responseTime === 'number' && req) {
      done.push({ method: req.method, url: req.url, status: entry.res.statusCode, responseTime: entry.responseTime });
      pending.delete(entry.reqId);
    }
  }
  return done;
}

/**
 * Agent-side times of the last `expected.length` requests matching `method`
 * and `pattern`, if their URLs line up with `expected` (else null: the log
 * does not say, or says something else).
 */
export function agentSideTimes(logFile: string, method: string, pattern: RegExp, expected: string[]): number[] | null {
  const matching = loggedRequests(logFile).filter((r) => r.method === method && pattern.test(r.url));
  const tail = matching.slice(-expected.length);
  if (tail.length !== expected.length || tail.some((r, i) => r.url !== expected[i])) return null;
  return tail.map((r) => r.responseTime);
}
