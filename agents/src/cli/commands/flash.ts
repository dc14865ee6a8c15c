import { InvalidArgumentError, type Command } from 'commander';
import {
  FlashSessionInfoSchema,
  FlashSessionListSchema,
  formatSize,
  type EstablishFlashRequest,
  type FlashPairRequest,
  type FlashSessionInfo,
  type FlashState,
  type FlashUpdateRequest,
} from '@tandem/contract';
import type { AgentApiClient } from '../api-client.ts';
import { dataOption, jsonOption, parseCount } from '../arguments.ts';
import { formatFields, formatTable, print, printJson, usageError } from '../output.ts';
import { withClient, type AdminOptions } from './admin.ts';

/** `--pair SRC:TGT` or, coordinated, `SRC:TGT:REMOTE-TGT`; repeated options collect into a list. */
function collectPair(text: string, previous: FlashPairRequest[] = []): FlashPairRequest[] {
  const parts = text.split(':');
  const name = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
  if (parts.length < 2 || parts.length > 3 || parts.some((part) => !name.test(part))) {
    throw new InvalidArgumentError(`'${text}' is not SOURCE:TARGET (or SOURCE:TARGET:REMOTE-TARGET with --coordinated) of volume names`);
  }
  const [source, target, remoteTarget] = parts;
  return [...previous, remoteTarget === undefined ? { source, target } : { source, target, remoteTarget }];
}

/**
 * `--rate 50` (MiB/s), `--rate 0.5`; `unlimited` lifts the limit. (Commander
 * turns a parser's null into '', so the lifted limit travels as a word.)
 */
function parseRate(text: string): number | 'unlimited' {
  if (text === 'unlimited' || text === 'none') return 'unlimited';
  const value = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || !(value > 0)) {
    throw new InvalidArgumentError(`'${text}' is not a rate in MiB/s above 0 (or 'unlimited')`);
  }
  return value;
}

/** `--interval 2`, `--interval 0.5`: seconds. */
function parseSeconds(text: string): number {
  const value = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || !(value >= 0.1 && value <= 3600)) {
    throw new InvalidArgumentError(`'${text}' is not a number of seconds from 0.1 to 3600`);
  }
  return value;
}

/** What each state means, in words an admin can act on. */
const stateMeaning: Record<FlashState, string> = {
  'idle-copied': 'no copy running; the targets hold their point-in-time image on their own',
  preparing: 'establishing: source writes are held for the point in time',
  prepared: 'every pair is ready; the point in time is being taken',
  copying: 'the targets show the point in time now; old source data is copied before it is overwritten',
  stopping: 'withdrawing after the background copy finishes',
  stopped: 'withdrawn before the background copy finished: the targets keep their point-in-time image, part of their space still shared with the sources',
  suspended: 'background copy paused; the point-in-time image stays intact',
};

/** `2 h 05 min`, `3 min 20 s`, `12 s`. */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/** Copied tracks over all pairs, in percent. */
export function sessionPercent(session: FlashSessionInfo): number {
  const total = session.pairs.reduce((sum, pair) => sum + pair.totalTracks, 0);
  const copied = session.pairs.reduce((sum, pair) => sum + pair.copiedTracks, 0);
  return total === 0 ? 100 : (copied / total) * 100;
}

/** One decimal, rounded down: "100.0" only when every track is copied. */
function percentText(percent: number): string {
  return (Math.floor(percent * 10) / 10).toFixed(1);
}

function optionsText(session: FlashSessionInfo): string {
  const { options } = session;
  const copy = options.backgroundCopy
    ? `background copy${options.rateMiBps === null ? ' (no rate limit)' : ` at ${options.rateMiBps} MiB/s`}`
    : 'no-copy (only tracks overwritten at the source are copied)';
  const extra = [
    options.incremental ? 'incremental (refresh/reverse copy changed tracks only)' : null,
    options.writeInhibitTarget ? 'targets refuse host writes' : null,
    options.preserveMirror ? 'preserve mirror' : null,
    session.coordinated ? 'coordinated with the mirror secondary' : null,
  ].filter((text): text is string => text !== null);
  return [copy, ...extra].join('; ');
}

/** One line of progress: `42.3 % copied, 120 MiB/s, about 3 min 20 s left`. */
function progressText(session: FlashSessionInfo): string {
  const parts = [`${percentText(sessionPercent(session))} % copied`];
  if (session.state === 'copying' || session.state === 'stopping') {
    if (session.copyBytesPerSecond > 0) parts.push(`${formatSize(Math.round(session.copyBytesPerSecond))}/s`);
    if (session.etaSeconds !== null) parts.push(`about ${duration(session.etaSeconds)} left`);
    else if (session.options.backgroundCopy) parts.push('time left unknown yet');
  }
  return parts.join(', ');
}

export function flashSessionFields(session: FlashSessionInfo): string {
  const fields = formatFields([
    ['session', `${session.name} (${session.pairs.length === 1 ? '1 pair' : `consistent group of ${session.pairs.length} pairs`})`],
    ['state', `${session.state.toUpperCase()}: ${stateMeaning[session.state]}`],
    ['progress', progressText(session)],
    [
      'point in time',
      session.pointInTime === null ? '- (not established)' : `${session.pointInTime}${session.holdMs === null ? '' : ` (source writes held ${session.holdMs.toFixed(1)} ms)`}`,
    ],
    ['options', optionsText(session)],
    ...(session.withdrawnAt ? [['withdrawn', `${session.withdrawnAt} (the relationships are gone; \`flash remove ${session.name}\` forgets the session)`] as [string, string]] : []),
    ['updated', session.updatedAt],
  ]);
  const changed = session.options.incremental;
  const pairs = formatTable(
    ['SOURCE', 'TARGET', 'STATE', 'COPIED', 'TRACKS', ...(changed ? ['CHANGED SRC/TGT'] : []), 'MIRROR', 'REASON'],
    session.pairs.map((pair) => [
      pair.source,
      pair.remoteTarget ? `${pair.target} (+ ${pair.remoteTarget} at the secondary)` : pair.target,
      pair.state,
      `${percentText(pair.percent)} %`,
      `${pair.copiedTracks}/${pair.totalTracks} x ${formatSize(pair.trackSize)}`,
      ...(changed ? [pair.changedTracks ? `${pair.changedTracks.source}/${pair.changedTracks.target}` : '-'] : []),
      pair.mirror,
      pair.reason ?? '-',
    ]),
    [3],
  );
  return `${fields}\n\n${pairs}`;
}

function listTable(sessions: FlashSessionInfo[]): string {
  return formatTable(
    ['NAME', 'STATE', 'PAIRS', 'COPIED', 'RATE', 'ETA', 'POINT IN TIME'],
    sessions.map((session) => [
      session.name,
      session.withdrawnAt ? `${session.state} (withdrawn)` : session.state,
      String(session.pairs.length),
      `${percentText(sessionPercent(session))} %`,
      session.copyBytesPerSecond > 0 ? `${formatSize(Math.round(session.copyBytesPerSecond))}/s` : '-',
      session.etaSeconds === null ? '-' : duration(session.etaSeconds),
      session.pointInTime ?? '-',
    ]),
    [2, 3, 4, 5],
  );
}

const sessionPath = (name: string, rest = '') => `/v1/flash-sessions/${encodeURIComponent(name)}${rest}`;

/** States in which `show --watch` keeps watching: something is still moving. */
const moving: FlashState[] = ['preparing', 'prepared', 'copying', 'stopping'];

async function watch(client: AgentApiClient, name: string, options: AdminOptions & { interval: number }): Promise<void> {
  let stop = false;
  const onSignal = () => (stop = true);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    for (;;) {
      const session = await client.call('GET', sessionPath(name), FlashSessionInfoSchema);
      if (options.json) process.stdout.write(`${JSON.stringify(session)}\n`);
      else print(`${new Date().toISOString()}  ${session.name}  ${session.state}  ${progressText(session)}`);
      // A background copy that finished leaves `copying` (idle-copied); a no-copy session stays there: stop at 100 % too.
      if (stop || !moving.includes(session.state) || (session.state === 'copying' && sessionPercent(session) >= 100)) {
        if (!options.json) print(`\n${flashSessionFields(session)}`);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, options.interval * 1000));
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** `flash …`: point-in-time copies source -> target on this agent. */
export function registerFlashCommands(program: Command): void {
  const flash = program.command('flash').description('flash copy: point-in-time copies of volumes (consistent groups)');

  flash
    .command('establish')
    .description('flash SOURCE to TARGET now (same size); several --pair options flash one consistent group')
    .requiredOption('--pair <source:target>', 'a pair to flash; repeat for a consistent group; SOURCE:TARGET:REMOTE-TARGET with --coordinated', collectPair)
    .option('--name <name>', 'session name (default flash-N)')
    .option('--no-copy', 'no background copy: only tracks overwritten at the source are copied')
    .option('--rate <MiB/s>', 'background copy rate limit in MiB/s', parseRate)
    .option('--incremental', 'record changes so refresh and reverse copy only changed tracks')
    .option('--write-inhibit', 'targets refuse host writes while the relationship exists')
    .option('--preserve-mirror', 'when targets are mirrored primaries, flash at the secondary too so their copy sets stay duplex')
    .option('--hold-timeout <ms>', 'longest time source writes may be held while the group is established (10..60000)', parseCount)
    .option('--coordinated', 'also flash at the mirror secondary at the matching point (needs SOURCE:TARGET:REMOTE-TARGET)')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action(
      (
        options: AdminOptions & {
          pair: FlashPairRequest[];
          name?: string;
          copy: boolean;
          rate?: number | 'unlimited';
          incremental?: boolean;
          writeInhibit?: boolean;
          preserveMirror?: boolean;
          holdTimeout?: number;
          coordinated?: boolean;
        },
      ) =>
        withClient(options, async (client) => {
          const body: Partial<EstablishFlashRequest> & { pairs: FlashPairRequest[] } = {
            pairs: options.pair,
            backgroundCopy: options.copy,
            incremental: options.incremental === true,
            writeInhibitTarget: options.writeInhibit === true,
            preserveMirror: options.preserveMirror === true,
            coordinated: options.coordinated === true,
          };
          if (options.name !== undefined) body.name = options.name;
          if (options.rate !== undefined) body.rateMiBps = options.rate === 'unlimited' ? null : options.rate;
          if (options.holdTimeout !== undefined) body.holdTimeoutMs = options.holdTimeout;
          const session = await client.call('POST', '/v1/flash-sessions', FlashSessionInfoSchema, body);
          if (options.json) return printJson(session);
          print(`established flash session ${session.name}: ${session.pairs.map((pair) => `${pair.source} -> ${pair.target}`).join(', ')}`);
          print(`the target${session.pairs.length > 1 ? 's' : ''} can be used now\n`);
          print(flashSessionFields(session));
        }),
    );

  for (const action of ['refresh', 'reverse'] as const) {
    flash
      .command(`${action} <name>`)
      .description(
        action === 'refresh'
          ? 'take a new point in time into the targets (incremental sessions copy only changed tracks)'
          : 'restore the targets\' images onto the sources (incremental sessions copy only changed tracks)',
      )
      .option('--hold-timeout <ms>', 'longest time source writes may be held (10..60000)', parseCount)
      .addOption(dataOption())
      .addOption(jsonOption())
      .action((name: string, options: AdminOptions & { holdTimeout?: number }) =>
        withClient(options, async (client) => {
          const body = options.holdTimeout === undefined ? {} : { holdTimeoutMs: options.holdTimeout };
          const session = await client.call('POST', sessionPath(name, `/${action}`), FlashSessionInfoSchema, body);
          if (options.json) return printJson(session);
          print(`${action === 'refresh' ? 'refreshed' : 'reversed'} flash session ${session.name}\n`);
          print(flashSessionFields(session));
        }),
      );
  }

  flash
    .command('withdraw <name>')
    .description('end the relationships (the targets keep their images); --finish-copy first gives every target its own copy of each track')
    .option('--finish-copy', 'finish the background copy first (state stopping until done), so no space stays shared')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((name: string, options: AdminOptions & { finishCopy?: boolean }) =>
      withClient(options, async (client) => {
        const session = await client.call('POST', sessionPath(name, '/withdraw'), FlashSessionInfoSchema, {
          finishCopy: options.finishCopy === true,
        });
        if (options.json) return printJson(session);
        print(
          session.state === 'stopping'
            ? `withdrawing flash session ${session.name} once the background copy finishes (${progressText(session)})`
            : `withdrew flash session ${session.name} (${session.state})`,
        );
      }),
    );

  flash
    .command('remove <name>')
    .description('forget a withdrawn session (an active one is refused: withdraw it first)')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((name: string, options: AdminOptions) =>
      withClient(options, async (client) => {
        await client.call('DELETE', sessionPath(name), null);
        if (options.json) printJson({ removed: name });
        else print(`removed flash session ${name}`);
      }),
    );

  flash
    .command('update <name>')
    .description('change the background copy of a session: rate, pause/resume, copy/no-copy')
    .option('--rate <MiB/s>', "new rate limit in MiB/s, or 'unlimited'", parseRate)
    .option('--pause', 'pause the background copy (suspended)')
    .option('--resume', 'resume a paused background copy')
    .option('--copy', 'start a background copy of a no-copy session')
    .option('--stop-copy', 'stop copying in the background (no-copy from now on)')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action(
      (name: string, options: AdminOptions & { rate?: number | 'unlimited'; pause?: boolean; resume?: boolean; copy?: boolean; stopCopy?: boolean }) =>
        withClient(options, async (client) => {
          if (options.pause && options.resume) throw usageError('--pause and --resume contradict each other');
          if (options.copy && options.stopCopy) throw usageError('--copy and --stop-copy contradict each other');
          const body: FlashUpdateRequest = {};
          if (options.rate !== undefined) body.rateMiBps = options.rate === 'unlimited' ? null : options.rate;
          if (options.pause || options.resume) body.paused = options.pause === true;
          if (options.copy || options.stopCopy) body.backgroundCopy = options.copy === true;
          if (Object.keys(body).length === 0) throw usageError('nothing to change: give --rate, --pause, --resume, --copy or --stop-copy');
          const session = await client.call('PATCH', sessionPath(name), FlashSessionInfoSchema, body);
          if (options.json) return printJson(session);
          print(`updated flash session ${session.name}\n`);
          print(flashSessionFields(session));
        }),
    );

  flash
    .command('show <name>')
    .description('state, progress and pairs of a flash session; --watch follows the copy until it ends')
    .option('--watch', 'print progress every --interval seconds until the copy ends or Ctrl-C')
    .option('--interval <seconds>', 'seconds between updates with --watch (default 2)', parseSeconds, 2)
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((name: string, options: AdminOptions & { watch?: boolean; interval: number }) =>
      withClient(options, async (client) => {
        if (options.watch) return watch(client, name, options);
        const session = await client.call('GET', sessionPath(name), FlashSessionInfoSchema);
        if (options.json) printJson(session);
        else print(flashSessionFields(session));
      }),
    );

  flash
    .command('list')
    .description('list flash sessions')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((options: AdminOptions) =>
      withClient(options, async (client) => {
        const { sessions } = await client.call('GET', '/v1/flash-sessions', FlashSessionListSchema);
        if (options.json) printJson({ sessions });
        else print(sessions.length ? listTable(sessions) : 'no flash sessions');
      }),
    );
}
