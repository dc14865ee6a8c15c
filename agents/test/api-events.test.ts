/**
 * `GET /v1/events` filters of a real spawned agent: by subject, by type and
 * family, leaving types out, the newest matches, paging with `after`; bad
 * filters are refused with `bad-request`. A volume and a flash session share
 * the name `nightly`, so subject alone does not tell them apart: type does.
 */
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventListSchema, ProblemSchema, type AgentEvent } from '@tandem/contract';
import { startAgentProcess, type AgentProcess } from './helpers/agent-process.ts';
import { establish } from './helpers/flash.ts';

const MiB = 1024 * 1024;
let agent: AgentProcess;
/** The whole log, read page by page without a filter: what every filtered answer is checked against. */
let log: AgentEvent[];

async function events(query: string): Promise<AgentEvent[]> {
  const response = await agent.api.request('GET', `/v1/events?${query}`);
  expect(response.status, JSON.stringify(response.body)).toBe(200);
  return EventListSchema.parse(response.body).events;
}

async function wholeLog(): Promise<AgentEvent[]> {
  const all: AgentEvent[] = [];
  for (;;) {
    const page = await agent.api.events(all.at(-1)?.id ?? 0, 1000);
    all.push(...page);
    if (page.length < 1000) return all;
  }
}

const family = (event: AgentEvent) => event.type.split('.')[0];

beforeAll(async () => {
  agent = await startAgentProcess({ site: 'events-site' });
  await agent.api.createVolume('nightly', 16 * MiB);
  await agent.api.createVolume('nightly-pit', 16 * MiB);
  await agent.api.createVolume('other', 16 * MiB);
  await agent.api.resizeVolume('other', 32 * MiB);
  await agent.api.resizeVolume('nightly', 16 * MiB + 65536);
  await agent.api.resizeVolume('nightly-pit', 16 * MiB + 65536);
  await establish(agent, { name: 'nightly', pairs: [{ source: 'nightly', target: 'nightly-pit' }] });
  const withdrawn = await agent.api.request('POST', '/v1/flash-sessions/nightly/withdraw', {});
  expect(withdrawn.status, JSON.stringify(withdrawn.body)).toBe(200);
  log = await wholeLog();
  // What the filters below pick from: volume and flash events about `nightly`, and events about other subjects.
  expect(new Set(log.filter((event) => event.subject === 'nightly').map(family))).toEqual(new Set(['volume', 'flash']));
  expect(log.some((event) => event.subject !== 'nightly')).toBe(true);
});

afterAll(async () => {
  await agent?.stop();
});

describe('filtering the event log', () => {
  it('answers only the events about one subject, oldest first', async () => {
    const about = await events('subject=nightly');
    expect(about).toEqual(log.filter((event) => event.subject === 'nightly'));
    expect(await events('subject=nobody')).toEqual([]);
  });

  it('narrows by family and by exact type, alone or with a subject', async () => {
    const flash = await events('subject=nightly&type=flash.*');
    expect(flash.length).toBeGreaterThan(1);
    expect(flash).toEqual(log.filter((event) => event.subject === 'nightly' && event.type.startsWith('flash.')));
    expect(await events('type=volume.*')).toEqual(log.filter((event) => family(event) === 'volume'));
    expect(await events('type=volume.resized,flash.established')).toEqual(log.filter((event) => ['volume.resized', 'flash.established'].includes(event.type)));
    // A family is named with `.*`; a bare family name is an exact type nothing has.
    expect(await events('type=volume')).toEqual([]);
  });

  it('leaves out the types and families named in excludeType', async () => {
    const withoutEstablished = await events('subject=nightly&type=flash.*&excludeType=flash.established');
    expect(withoutEstablished).toEqual(log.filter((event) => event.subject === 'nightly' && event.type.startsWith('flash.') && event.type !== 'flash.established'));
    expect(withoutEstablished.some((event) => event.type === 'flash.withdrawn')).toBe(true);
    expect(await events('subject=nightly&excludeType=flash.*')).toEqual(log.filter((event) => event.subject === 'nightly' && family(event) !== 'flash'));
  });

  it('answers the newest matches with newest=true, still oldest first, and pages with after', async () => {
    const about = log.filter((event) => event.subject === 'nightly');
    expect(about.length).toBeGreaterThan(3);
    expect(await events('subject=nightly&limit=2&newest=true')).toEqual(about.slice(-2));
    expect(await events('subject=nightly&limit=2')).toEqual(about.slice(0, 2));
    expect(await events('subject=nightly&limit=2&newest=false')).toEqual(about.slice(0, 2));
    expect(await events(`subject=nightly&after=${about[1].id}&limit=1000`)).toEqual(about.slice(2));
    expect(await events(`subject=nightly&after=${about.at(-2)!.id}&limit=5&newest=true`)).toEqual(about.slice(-1));
  });

  it("finds a subject's events through the catalog's (subject, id) index, not by scanning the log", () => {
    const db = new Database(path.join(agent.dataDir, 'catalog.db'), { readonly: true });
    try {
      const plan = db
        .prepare("EXPLAIN QUERY PLAN SELECT * FROM events WHERE id > 0 AND subject = 'nightly' AND (type GLOB 'flash.*') ORDER BY id DESC LIMIT 100")
        .all() as Array<{ detail: string }>;
      expect(plan.map((step) => step.detail).join('; ')).toMatch(/USING INDEX events_subject/);
    } finally {
      db.close();
    }
  });

  it.each([
    ['an empty subject', 'subject=', 'querystring.subject'],
    ['a subject over 256 characters', `subject=${'s'.repeat(257)}`, 'querystring.subject'],
    ['an empty type', 'type=', 'querystring.type'],
    ['a type with capitals', 'type=Flash.state', 'querystring.type'],
    ['a wildcard inside a type', 'type=fl*sh.state', 'querystring.type'],
    ['a wildcard after letters', 'type=volume.res*', 'querystring.type'],
    ['a bare wildcard to leave out', 'excludeType=*', 'querystring.excludeType'],
    ['an empty entry in a list', 'type=flash.*,,volume.*', 'querystring.type'],
    ['more than 20 types', `type=${Array.from({ length: 21 }, (_, index) => `t${index}.x`).join(',')}`, 'querystring.type'],
    ['newest not a boolean', 'newest=yes', 'querystring.newest'],
  ])('refuses %s with bad-request', async (_label, query, where) => {
    const response = await agent.api.request('GET', `/v1/events?${query}`);
    expect(response.status).toBe(400);
    const problem = ProblemSchema.parse(response.body);
    expect(problem.problem).toBe('bad-request');
    expect(problem.message).toContain(where);
  });
});
