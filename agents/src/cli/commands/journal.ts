import { InvalidArgumentError, type Command } from 'commander';
import {
  ImageAccessInfoSchema,
  ImageAccessListSchema,
  JournalPointListSchema,
  JournalPointSchema,
  JournalViewSchema,
  type ImageAccessInfo,
  type ImageAccessRequest,
  type JournalView,
  type SetJournalRequest,
} from '@tandem/contract';
import { dataOption, jsonOption, parseSizeArgument } from '../arguments.ts';
import { formatFields, formatTable, print, printJson, size, usageError } from '../output.ts';
import { withClient, type AdminOptions } from './admin.ts';

const durationUnits: Record<string, number> = { s: 1, m: 60, min: 60, h: 3600, d: 86400, w: 604800 };

/** A duration in seconds: `90`, `90s`, `30m`, `24h`, `7d`, `1w`. */
export function parseDuration(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)?\s*$/.exec(text);
  if (!match || Number(match[1]) <= 0) throw new InvalidArgumentError(`'${text}' is not a duration (like 90s, 30m, 24h, 7d)`);
  return Number(match[1]) * durationUnits[match[2] ?? 's'];
}

function seconds(value: number | null): string {
  if (value === null) return 'unbounded';
  if (value >= 3600) return `${(value / 3600).toFixed(1)} h`;
  if (value >= 60) return `${(value / 60).toFixed(1)} min`;
  return `${value.toFixed(0)} s`;
}

const path = (session: string) => `/v1/sessions/${encodeURIComponent(session)}`;

function journalText(view: JournalView): string {
  const { status, policy } = view;
  const fields: Array<[string, string]> = [
    ['session', view.session],
    ['replica volumes', view.volumes.join(', ')],
    ['space', `${size(status.usedBytes)} of ${size(policy.budgetBytes)} (${size(status.pendingBytes)} not yet distributed)`],
    ['window', `${seconds(status.coveredWindowSeconds)} covered, ${seconds(policy.requiredWindowSeconds)} required, about ${seconds(status.predictedWindowSeconds)} predicted`],
    ['points', `${status.pointCount} (${status.bookmarkCount} bookmark(s))`],
    ['oldest point', status.oldestPoint ? `${status.oldestPoint.time} (#${status.oldestPoint.seq})` : '-'],
    ['newest point', status.newestPoint ? `${status.newestPoint.time} (#${status.newestPoint.seq})` : '-'],
    ['bookmarks kept', policy.bookmarkRetentionSeconds === null ? 'until space runs out' : seconds(policy.bookmarkRetentionSeconds)],
  ];
  for (const warning of status.warnings) fields.push([warning.level, warning.message]);
  for (const image of view.images) fields.push([`image ${image.id}`, `at #${image.point.seq} ${image.point.time}: ${image.exports.map((each) => each.export).join(', ')}`]);
  return formatFields(fields);
}

function imageText(image: ImageAccessInfo): string {
  return [
    `image ${image.id} of session ${image.session} at point #${image.point.seq} (${image.point.time}${image.point.bookmark ? `, bookmark ${image.point.bookmark}` : ''})`,
    'NBD exports (read-write; writes are discarded at the end):',
    ...image.exports.map((each) => `  ${each.export}    (${each.volume} as of then)`),
    `end it with: tandem-agent image end ${image.session} ${image.id}`,
  ].join('\n');
}

interface SetOptions extends AdminOptions {
  size: number;
  window: number;
  keepBookmarks?: number;
}

/** A journal point's number on the command line. */
export function parsePointNumber(text: string): number {
  if (!/^\d+$/.test(text)) throw new InvalidArgumentError(`'${text}' is not a point number`);
  return Number(text);
}

/** The journal point a command names with --bookmark, --at or --point: exactly one when `required`, else at most one. */
export function journalPoint(options: { bookmark?: string; at?: string; point?: number }, required: boolean): { bookmark?: string; at?: string; seq?: number } {
  const given = [options.bookmark, options.at, options.point].filter((value) => value !== undefined).length;
  if (given > 1 || (required && given === 0)) throw usageError(`give ${required ? 'exactly' : 'at most'} one of --bookmark, --at or --point`);
  const body: { bookmark?: string; at?: string; seq?: number } = {};
  if (options.bookmark !== undefined) body.bookmark = options.bookmark;
  if (options.at !== undefined) {
    const at = Date.parse(options.at);
    if (Number.isNaN(at)) throw usageError(`--at ${options.at} is not a time`);
    body.at = new Date(at).toISOString();
  }
  if (options.point !== undefined) body.seq = options.point;
  return body;
}

/**
 * `tandem-agent journal set|off|show|bookmark|points` and `tandem-agent image
 * access|end|list`: continuous data protection at a session's secondary agent.
 */
export function registerJournalCommands(program: Command): void {
  const journal = program.command('journal').description("a session's continuous data protection journal at its secondary agent: points in time and bookmarks");

  journal
    .command('set')
    .description('turn the journal of a session on (at its secondary agent), or change its policy')
    .argument('<session>', 'session name')
    .requiredOption('--size <bytes>', "the journal's space in the pool (like 10G)", parseSizeArgument)
    .requiredOption('--window <duration>', 'the protection window required (like 24h)', parseDuration)
    .option('--keep-bookmarks <duration>', 'how long bookmarks are kept (default: until space runs out)', parseDuration)
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((session: string, options: SetOptions) =>
      withClient(options, async (client) => {
        const body: SetJournalRequest = { budgetBytes: options.size, requiredWindowSeconds: options.window };
        if (options.keepBookmarks !== undefined) body.bookmarkRetentionSeconds = options.keepBookmarks;
        const view = await client.call('PUT', `${path(session)}/journal`, JournalViewSchema, body);
        if (options.json) printJson(view);
        else print(journalText(view));
      }),
    );

  journal
    .command('off')
    .description('turn the journal of a session off: its points, bookmarks and images go')
    .argument('<session>', 'session name')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((session: string, options: AdminOptions) =>
      withClient(options, async (client) => {
        await client.call('DELETE', `${path(session)}/journal`, null);
        if (options.json) printJson({ session, journal: 'off' });
        else print(`journal of session ${session} is off`);
      }),
    );

  journal
    .command('show')
    .description("the journal's space, protection window, points, warnings and open images")
    .argument('<session>', 'session name')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((session: string, options: AdminOptions) =>
      withClient(options, async (client) => {
        const view = await client.call('GET', `${path(session)}/journal`, JournalViewSchema);
        if (options.json) printJson(view);
        else print(journalText(view));
      }),
    );

  journal
    .command('bookmark')
    .description('a named point in time at every write the secondary has received')
    .argument('<session>', 'session name')
    .argument('<name>', 'bookmark name')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((session: string, name: string, options: AdminOptions) =>
      withClient(options, async (client) => {
        const point = await client.call('POST', `${path(session)}/journal/bookmarks`, JournalPointSchema, { name });
        if (options.json) printJson(point);
        else print(`bookmark ${name} of session ${session}: point #${point.seq} at ${point.time}`);
      }),
    );

  journal
    .command('points')
    .description('the points in time, the last of each interval and every bookmark')
    .argument('<session>', 'session name')
    .option('--every <duration>', 'one point per interval (default 1s; 0 for every point)', (text: string) => (text === '0' ? 0 : parseDuration(text)), 1)
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((session: string, options: AdminOptions & { every: number }) =>
      withClient(options, async (client) => {
        const list = await client.call('GET', `${path(session)}/journal/points?every=${options.every}`, JournalPointListSchema);
        if (options.json) printJson(list);
        else if (list.points.length === 0) print('no points');
        else print(formatTable(['POINT', 'TIME', 'BOOKMARK'], list.points.map((point) => [`#${point.seq}`, point.time, point.bookmark ?? ''])));
      }),
    );

  const image = program.command('image').description('image access: a read-write NBD export of the replica at a point in time or bookmark');

  image
    .command('access')
    .description('instant image access at a bookmark, a time or a point; prints the NBD export names')
    .argument('<session>', 'session name')
    .option('--bookmark <name>', 'at this bookmark')
    .option('--at <time>', 'at the newest point at or before this time (ISO 8601)')
    .option('--point <seq>', 'at this point (#seq from journal points)', parsePointNumber)
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((session: string, options: AdminOptions & { bookmark?: string; at?: string; point?: number }) =>
      withClient(options, async (client) => {
        const body: ImageAccessRequest = journalPoint(options, true);
        const info = await client.call('POST', `${path(session)}/images`, ImageAccessInfoSchema, body);
        if (options.json) printJson(info);
        else print(imageText(info));
      }),
    );

  image
    .command('end')
    .description('ends image access: its exports go, what hosts wrote to it is discarded')
    .argument('<session>', 'session name')
    .argument('<id>', 'image id (from image access)')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((session: string, id: string, options: AdminOptions) =>
      withClient(options, async (client) => {
        if (!/^\d+$/.test(id)) throw usageError(`${id} is not an image id`);
        await client.call('DELETE', `${path(session)}/images/${id}`, null);
        if (options.json) printJson({ session, image: Number(id), ended: true });
        else print(`image ${id} of session ${session} ended`);
      }),
    );

  image
    .command('list')
    .description('open images of a session')
    .argument('<session>', 'session name')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((session: string, options: AdminOptions) =>
      withClient(options, async (client) => {
        const list = await client.call('GET', `${path(session)}/images`, ImageAccessListSchema);
        if (options.json) printJson(list);
        else if (list.images.length === 0) print('no open images');
        else print(formatTable(['ID', 'POINT', 'TIME', 'BOOKMARK', 'EXPORTS'], list.images.map((each) => [String(each.id), `#${each.point.seq}`, each.point.time, each.point.bookmark ?? '', each.exports.map((e) => e.export).join(',')])));
      }),
    );
}
