/**
 * `tandem-agent events` with the filters of `GET /v1/events` (subject, type,
 * exclude-type, newest) against a real spawned agent: what each prints, as
 * scripts read it (`--json`) and as people do, and bad values refused with
 * the problem code before anything is asked.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventListSchema, type AgentEvent } from '@tandem/contract';
import { startAgentProcess, type AgentProcess } from './helpers/agent-process.ts';

let agent: AgentProcess;
/** Every event the agent holds once the volumes below exist, oldest first. */
let log: AgentEvent[];
const MiB = 1024 * 1024;

beforeAll(async () => {
  agent = await startAgentProcess({ site: 'cli-events' });
  await agent.api.createVolume('nightly', 64 * MiB);
  await agent.api.createVolume('other', 64 * MiB);
  await agent.api.resizeVolume('nightly', 128 * MiB);
  await agent.api.createSnapshot('nightly', { name: 'nightly-snap' });
  await agent.api.resizeVolume('other', 128 * MiB);
  log = await agent.api.events(0, 1000);
});

afterAll(async () => {
  await agent?.stop();
});

async function events(...args: string[]): Promise<AgentEvent[]> {
  const result = await agent.cli(['events', ...args, '--json']);
  expect(result.code, `events ${args.join(' ')}: ${result.stderr}`).toBe(0);
  return EventListSchema.parse(JSON.parse(result.stdout)).events;
}

describe('events filters', () => {
  it('--subject, --type, --exclude-type and --newest narrow the list as the agent does', async () => {
    const about = log.filter((event) => event.subject === 'nightly');
    expect(about.map((event) => event.type)).toEqual(expect.arrayContaining(['volume.created', 'volume.resized']));
    expect(await events('--subject', 'nightly')).toEqual(about);
    expect(await events('--subject', 'nobody')).toEqual([]);

    const volumeEvents = log.filter((event) => event.type.startsWith('volume.'));
    expect(await events('--type', 'volume.*')).toEqual(volumeEvents);
    expect(await events('--type', 'volume.resized,snapshot.created')).toEqual(
      log.filter((event) => event.type === 'volume.resized' || event.type === 'snapshot.created'),
    );
    expect(await events('--type', 'volume.*', '--exclude-type', 'volume.resized')).toEqual(
      volumeEvents.filter((event) => event.type !== 'volume.resized'),
    );
    expect(await events('--exclude-type', 'volume.*,snapshot.*')).toEqual(
      log.filter((event) => !event.type.startsWith('volume.') && !event.type.startsWith('snapshot.')),
    );

    // The newest two resizes, oldest first; without --newest the oldest two.
    const resizes = log.filter((event) => event.type === 'volume.resized');
    expect(resizes.length).toBeGreaterThanOrEqual(2);
    const created = log.filter((event) => event.type === 'volume.created');
    expect(await events('--type', 'volume.resized,volume.created', '--newest', '--limit', '2')).toEqual(
      log.filter((event) => event.type === 'volume.resized' || event.type === 'volume.created').slice(-2),
    );
    expect(await events('--type', 'volume.created', '--limit', '1')).toEqual(created.slice(0, 1));
    expect(await events('--type', 'volume.created', '--limit', '1', '--newest')).toEqual(created.slice(-1));
    // Filters and --after together.
    expect(await events('--subject', 'other', '--after', String(created.at(-1)!.id))).toEqual(
      log.filter((event) => event.subject === 'other' && event.id > created.at(-1)!.id),
    );
  });

  it('prints the filtered events as a table', async () => {
    const result = await agent.cli(['events', '--subject', 'other', '--type', 'volume.*']);
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+TIME\s+SEVERITY\s+TYPE\s+SUBJECT\s+MESSAGE/);
    const expected = log.filter((event) => event.subject === 'other' && event.type.startsWith('volume.'));
    expect(lines.slice(1).map((line) => line.trim().split(/\s+/)[0])).toEqual(expected.map((event) => String(event.id)));
    for (const line of lines.slice(1)) expect(line).toMatch(/\svolume\.(created|resized)\s+other\s/);
    expect((await agent.cli(['events', '--subject', 'nobody'])).stdout).toBe('no events\n');
  });

  it.each([
    [['--type', 'Flash.state'], "'Flash.state' is not a list of event types"],
    [['--type', 'fl*sh'], "'fl*sh' is not a list of event types"],
    [['--type', 'volume.*,'], "'volume.*,' is not a list of event types"],
    [['--exclude-type', 'a..b'], "'a..b' is not a list of event types"],
    [['--type', Array.from({ length: 21 }, (_, i) => `t${i}`).join(',')], 'at most 20 event types or families'],
    [['--subject', ''], "'' is not a subject"],
    [['--subject', 'x'.repeat(257)], 'is not a subject'],
    [['--subject', 'nightly', '--follow'], '--follow does not take --subject, --type or --exclude-type'],
    [['--type', 'volume.*', '--follow'], '--follow does not take'],
  ])('refuses events %j with exit 2 and bad-request', async (args, message) => {
    const result = await agent.cli(['events', ...args]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^error: bad-request: /);
    expect(result.stderr).toContain(message);
    expect(result.stdout).toBe('');
  });

  it('documents the filters in its help', async () => {
    const result = await agent.cli(['events', '--help']);
    expect(result.code).toBe(0);
    for (const option of ['--subject <name>', '--type <list>', '--exclude-type <list>', '--newest', '--json']) {
      expect(result.stdout).toContain(option);
    }
  });
});
