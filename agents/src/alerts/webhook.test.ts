import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { AlertWebhookPayload } from '@tandem/contract';
import { WebhookNotifier } from './webhook.ts';

/** A real HTTP server answering each POST with what `answer` says (a status, or 'hang' to never answer). */
async function receiver(answer: (call: number) => number | 'hang'): Promise<{ url: string; bodies: unknown[]; calls: () => number; close: () => Promise<void> }> {
  const bodies: unknown[] = [];
  let calls = 0;
  const server = http.createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    request.on('end', () => {
      calls++;
      const status = answer(calls);
      if (status === 'hang') return;
      if (status < 300) bodies.push(JSON.parse(body));
      response.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    bodies,
    calls: () => calls,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

const payload = (key: string): AlertWebhookPayload => ({
  event: 'raised',
  site: 'alpha',
  agentId: 'A',
  sentAt: new Date().toISOString(),
  alert: {
    id: 1, key, kind: 'pool-full', severity: 'warning', site: 'alpha', subject: { kind: 'pool', session: null, name: null },
    message: 'the pool is 91 % full', raisedAt: new Date().toISOString(), clearedAt: null, value: 91, threshold: 90,
  },
});

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

describe('alert webhook', () => {
  it('posts in order, retries a failed POST with backoff and a hung one after its timeout', async () => {
    // 1: 500, 2: hangs (timeout), 3: ok (first document), 4: ok (second).
    const server = await receiver((call) => (call === 1 ? 500 : call === 2 ? 'hang' : 204));
    cleanups.push(server.close);
    const notifier = new WebhookNotifier(pino({ level: 'silent' }), { timeoutMs: 300, attempts: 4, backoffMs: 20 });
    cleanups.push(() => notifier.close());
    const started = Date.now();
    notifier.send(server.url, payload('first'));
    notifier.send(server.url, payload('second'));
    // send() queues and returns: the caller is never held up by the receiver.
    expect(Date.now() - started).toBeLessThan(50);
    await until(() => notifier.delivered === 2, 'both delivered');
    expect(server.calls()).toBe(4);
    expect(server.bodies.map((body) => (body as AlertWebhookPayload).alert.key)).toEqual(['first', 'second']);
    expect(notifier.failed).toBe(0);
  });

  it('gives up on a document after its attempts and goes on with the next', async () => {
    const server = await receiver((call) => (call <= 2 ? 503 : 204));
    cleanups.push(server.close);
    const notifier = new WebhookNotifier(pino({ level: 'silent' }), { timeoutMs: 1000, attempts: 2, backoffMs: 10 });
    cleanups.push(() => notifier.close());
    notifier.send(server.url, payload('lost'));
    notifier.send(server.url, payload('kept'));
    await until(() => notifier.delivered === 1 && notifier.failed === 1, 'one lost, one delivered');
    expect(server.bodies.map((body) => (body as AlertWebhookPayload).alert.key)).toEqual(['kept']);
  });

  it('an unreachable receiver costs nothing but retries', async () => {
    const notifier = new WebhookNotifier(pino({ level: 'silent' }), { timeoutMs: 200, attempts: 2, backoffMs: 10 });
    cleanups.push(() => notifier.close());
    notifier.send('http://127.0.0.1:1/hook', payload('nowhere'));
    await until(() => notifier.failed === 1, 'given up');
  });
});
