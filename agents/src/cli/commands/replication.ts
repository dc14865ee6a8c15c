import { InvalidArgumentError, Option, type Command } from 'commander';
import type { z } from 'zod';
import {
  FailbackPreflightSchema,
  PairBitmapSchema,
  PeerInfoSchema,
  PeerListSchema,
  SessionActionSchema,
  SessionInfoSchema,
  SessionListSchema,
  SessionTypeSchema,
  ShipCycleReportSchema,
  VerifyReportSchema,
  type FailbackPreflight,
  type SessionInfo,
  type VerifyReport,
} from '@tandem/contract';
import { loadAdminCredentials } from '../../tls/paths.ts';
import { AgentApiClient } from '../api-client.ts';
import { dataOption, jsonOption } from '../arguments.ts';
import { formatFields, formatTable, print, printJson, usageError } from '../output.ts';
import { withClient, type AdminOptions } from './admin.ts';
import { journalPoint, parsePointNumber } from './journal.ts';
import { registerSessionHistoryCommand } from './session-history.ts';

/**
 * POSTs a request the agent answers only once the work is done (minutes on big volumes), through a
 * client of the same agent without the 30 s idle limit; `checked` is the client withClient made.
 */
async function postUntilDone<S extends z.ZodType>(checked: AgentApiClient, options: AdminOptions, path: string, schema: S): Promise<z.output<S>> {
  const client = new AgentApiClient(`${checked.host.includes(':') ? `[${checked.host}]` : checked.host}:${checked.port}`, await loadAdminCredentials(options.data), 24 * 3600_000);
  try {
    return await client.call('POST', path, schema, {});
  } finally {
    client.close();
  }
}

/** `--interval <seconds>` of snapshot shipping: 0.1 s to a day. */
function parseInterval(text: string): number {
  const value = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || !(value >= 0.1 && value <= 86_400)) {
    throw new InvalidArgumentError(`'${text}' is not a number of seconds from 0.1 to 86400`);
  }
  return value;
}

function lastVerifyText(session: SessionInfo): string {
  const last = session.lastVerify;
  if (!last) return '-';
  const outcome = last.ok
    ? 'ok'
    : `${last.differingTracks} differing${last.unverifiedTracks ? `, ${last.unverifiedTracks} unverified` : ''}${last.resyncStarted ? ' (copied by a resync)' : ''}`;
  return `${outcome}: ${last.comparedTracks} track(s) compared at ${last.finishedAt}${last.trigger === 'failback' ? ' (after failback)' : ''}`;
}

/** Another agent of the session: its part, its link, and its clock as measured over the link. */
function peerText(peer: SessionInfo['peers'][number]): string {
  const link = peer.unreachableSince ? `${peer.link}, unreachable since ${peer.unreachableSince}` : `${peer.link} since ${peer.since ?? '-'}`;
  const clock = peer.clock
    ? `, clock ${peer.clock.offsetMs >= 0 ? '+' : '-'}${(Math.abs(peer.clock.offsetMs) / 1000).toFixed(1)} s (±${Math.ceil(peer.clock.rttMs / 2)} ms)`
    : '';
  return `${peer.site} (${peer.role}) ${link}${clock}`;
}

function sessionFields(session: SessionInfo): string {
  const fields = formatFields([
    ['session', `${session.name} (${session.type})`],
    ['state', `${session.state}, health ${session.health}${session.recoverable ? '' : ', not recoverable'}`],
    ['direction', `${session.direction} (H1 ${session.h1Site}, H2 ${session.h2Site}; this agent is ${session.role.toUpperCase()})`],
    ['consistency', session.consistencyTime ?? '-'],
    ['exposure', session.exposureSeconds === null ? '-' : `${session.exposureSeconds.toFixed(1)} s`],
    ...(session.shipIntervalSeconds != null ? [['interval', `${session.shipIntervalSeconds} s between shipping cycles`] as [string, string]] : []),
    ['last verify', lastVerifyText(session)],
    ['detail', session.detail ?? '-'],
    ['observed', `${session.observedAt} by this agent (state from ${session.stateFrom.site}, ${session.stateFrom.at})`],
    ['peers', session.peers.length ? session.peers.map(peerText).join('; ') : '-'],
  ]);
  const pairs = formatTable(
    ['H1 VOLUME', 'H2 VOLUME', 'STATE', 'OUT OF SYNC', 'TARGET CHANGED', 'SYNCED', 'REASON'],
    session.pairs.map((pair) => [
      pair.h1Volume,
      pair.h2Volume,
      pair.state,
      String(pair.outOfSyncTracks),
      String(pair.targetChangedTracks),
      pair.syncedPercent === null ? '-' : `${pair.syncedPercent}%`,
      pair.reason ?? (pair.consistent === false ? `not consistent: ${pair.inconsistentReason ?? 'initial copy not complete'}` : '-'),
    ]),
    [3, 4, 5],
  );
  return session.pairs.length ? `${fields}\n\n${pairs}` : `${fields}\n\nno copy sets yet`;
}

function preflightFields(preflight: FailbackPreflight): string {
  return [
    formatTable(
      ['PAIR', 'TARGET CHANGED', 'OUT OF SYNC', 'UNION', 'CODES DIFFER', 'CODES COMPUTED'],
      preflight.pairs.map((pair) => [
        pair.pair.slice(0, 8),
        String(pair.targetChangedTracks),
        String(pair.outOfSyncTracks),
        String(pair.candidateTracks),
        pair.differingTracks === null ? '-' : String(pair.differingTracks),
        String(pair.codesComputed),
      ]),
      [1, 2, 3, 4, 5],
    ),
    '',
    formatFields([
      ['tracks to copy', String(preflight.tracksToCopy)],
      ['bytes to copy', String(preflight.bytesToCopy)],
      ['estimated time', `${preflight.estimatedSeconds} s`],
    ]),
  ].join('\n');
}

function verifyFields(report: VerifyReport): string {
  const list = (tracks: number[], count: number) =>
    count === 0 ? '-' : `${tracks.slice(0, 16).join(', ')}${count > Math.min(16, tracks.length) ? `, … (${count})` : ''}`;
  return [
    formatTable(
      ['H1 VOLUME', 'H2 VOLUME', 'COMPARED', 'DIFFER', 'RECHECKED', 'UNVERIFIED', 'DIFFERING TRACKS'],
      report.pairs.map((pair) => [
        // Multi-primary sessions: the site holding the H1 volume.
        pair.primarySite ? `${pair.primarySite}:${pair.h1Volume}` : pair.h1Volume,
        pair.h2Volume,
        String(pair.comparedTracks),
        String(pair.differingCount),
        String(pair.recheckedTracks),
        String(pair.unverifiedCount),
        list(pair.differingTracks, pair.differingCount),
      ]),
      [2, 3, 4, 5],
    ),
    '',
    formatFields([
      ['compared', `${report.comparedTracks} track(s)`],
      ['differing', `${report.differingTracks} track(s)${report.differingTracks ? ', marked out-of-sync' : ''}`],
      ['unverified', `${report.unverifiedTracks} track(s)${report.unverifiedTracks ? ' (kept busy by writes; verify again)' : ''}`],
      ['resync', report.resyncStarted ? 'started: the differing tracks are being copied' : '-'],
    ]),
  ].join('\n');
}

/** `pair`, `peers`, `session …`: mirroring between sites. */
export function registerReplicationCommands(program: Command): void {
  program
    .command('pair')
    .description('pair this agent with another site, using a token printed there by `tandem-agent token`')
    .requiredOption('--with <host:port>', "the other agent's control API address")
    .requiredOption('--token <token>', 'pairing token from the other agent')
    .option('--fingerprint <fingerprint>', "expected SHA-256 fingerprint of the other agent's API certificate")
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((options: AdminOptions & { with: string; token: string; fingerprint?: string }) =>
      withClient(options, async (client) => {
        const peer = await client.call('POST', '/v1/peers', PeerInfoSchema, {
          apiAddress: options.with,
          token: options.token,
          fingerprint: options.fingerprint,
        });
        if (options.json) printJson(peer);
        else print(`paired with site ${peer.site} (agent ${peer.agentId}); peer link ${peer.linkAddress}`);
      }),
    );

  const peers = program.command('peers').description('paired sites');
  peers
    .command('list')
    .description('list paired sites and their link state')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((options: AdminOptions) =>
      withClient(options, async (client) => {
        const { peers: list } = await client.call('GET', '/v1/peers', PeerListSchema);
        if (options.json) return printJson({ peers: list });
        print(
          list.length
            ? formatTable(
                ['SITE', 'AGENT', 'LINK', 'STATE', 'CLOCK', 'PAIRED'],
                list.map((p) => [
                  p.site,
                  p.agentId,
                  p.linkAddress,
                  p.link,
                  p.clock ? `${p.clock.offsetMs >= 0 ? '+' : '-'}${(Math.abs(p.clock.offsetMs) / 1000).toFixed(1)} s` : '-',
                  p.pairedAt,
                ]),
              )
            : 'no paired sites',
        );
      }),
    );
  peers
    .command('set-link <site> <address>')
    .description("point the peer link to a site at another host:port (the site moved, or a WAN proxy)")
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((site: string, address: string, options: AdminOptions) =>
      withClient(options, async (client) => {
        const peer = await client.call('PATCH', `/v1/peers/${encodeURIComponent(site)}`, PeerInfoSchema, { linkAddress: address });
        if (options.json) printJson(peer);
        else print(`link to ${peer.site} now dials ${peer.linkAddress}`);
      }),
    );

  const session = program.command('session').description('mirroring sessions');
  session
    .command('create <name>')
    .description('define a session with a paired site')
    .requiredOption('--type <type>', `session type: ${SessionTypeSchema.options.join(', ')}`)
    .requiredOption('--peer <site>', 'the paired site (name or agent id)')
    .option('--interval <seconds>', 'snapshot-shipping: seconds between cycles (default 30)', parseInterval)
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((name: string, options: AdminOptions & { type: string; peer: string; interval?: number }) =>
      withClient(options, async (client) => {
        const type = SessionTypeSchema.safeParse(options.type);
        if (!type.success) throw usageError(`--type must be one of ${SessionTypeSchema.options.join(', ')}`);
        if (options.interval !== undefined && type.data !== 'snapshot-shipping') throw usageError('--interval is for --type snapshot-shipping');
        const created = await client.call('POST', '/v1/sessions', SessionInfoSchema, {
          name,
          type: type.data,
          peer: options.peer,
          shipIntervalSeconds: options.interval,
        });
        if (options.json) printJson(created);
        else print(`created ${created.type} session ${created.name} (H1 ${created.h1Site}, H2 ${created.h2Site})`);
      }),
    );
  session
    .command('add <name> <h1-volume> <h2-volume>')
    .description(
      'add a copy set: a volume here (H1) and one of the same size at the other site (H2); in a started session it is copied at once and the other copy sets keep mirroring',
    )
    .option(
      '--primary-agent <site>',
      'async sessions: the paired site whose agent owns the H1 volume (default: this agent, the control agent); also while the session runs, when it was started with copy sets at other agents',
    )
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((name: string, h1Volume: string, h2Volume: string, options: AdminOptions & { primaryAgent?: string }) =>
      withClient(options, async (client) => {
        const updated = await client.call('POST', `/v1/sessions/${encodeURIComponent(name)}/pairs`, SessionInfoSchema, {
          h1Volume,
          h2Volume,
          ...(options.primaryAgent ? { primaryAgent: options.primaryAgent } : {}),
        });
        if (options.json) printJson(updated);
        else if (options.primaryAgent && updated.state === 'defined') print(`added ${options.primaryAgent}:${h1Volume} -> ${h2Volume} to ${name}`);
        else if (options.primaryAgent) {
          print(
            `added ${options.primaryAgent}:${h1Volume} -> ${h2Volume} to ${name} (${updated.state}); its initial copy runs now at ${options.primaryAgent}, then it joins the consistency group\n\n${sessionFields(updated)}`,
          );
        }
        else if (updated.state === 'defined') print(`added ${h1Volume} -> ${h2Volume} to ${name}`);
        else print(`added ${h1Volume} -> ${h2Volume} to ${name} (${updated.state}); its initial copy runs now\n\n${sessionFields(updated)}`);
      }),
    );
  session
    .command('remove <name> <h1-volume>')
    .description(
      'remove a copy set; in a started session it stops being mirrored and both sites drop its bitmaps (the last copy set of a started session is refused: terminate it)',
    )
    .option('--primary-agent <site>', 'multi-primary sessions: the site holding the H1 volume (needed when several primary agents have copy sets of that volume name)')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((name: string, h1Volume: string, options: AdminOptions & { primaryAgent?: string }) =>
      withClient(options, async (client) => {
        const query = options.primaryAgent ? `?primaryAgent=${encodeURIComponent(options.primaryAgent)}` : '';
        await client.call('DELETE', `/v1/sessions/${encodeURIComponent(name)}/pairs/${encodeURIComponent(h1Volume)}${query}`, null);
        const session = await client.call('GET', `/v1/sessions/${encodeURIComponent(name)}`, SessionInfoSchema);
        const removed = options.primaryAgent ? `${options.primaryAgent}:${h1Volume}` : h1Volume;
        if (options.json) printJson({ removed: h1Volume, ...(options.primaryAgent ? { primaryAgent: options.primaryAgent } : {}), session });
        else print(`removed ${removed} from ${name}`);
      }),
    );
  for (const action of SessionActionSchema.options) {
    const command = session
      .command(`${action} <name>`)
      .description(
        {
          start: 'start mirroring H1 -> H2 (initial copy of allocated tracks)',
          suspend: 'stop mirroring; changes are tracked for a later resume',
          resume: 'resync what changed and mirror again',
          recover: 'failover: make the targets writable (changes there are tracked)',
          failback: 'copy production back and mirror in the other direction',
          terminate: 'stop the session and drop its bitmaps (copy sets stay defined)',
        }[action],
      )
      .addOption(dataOption())
      .addOption(jsonOption());
    if (action === 'failback') {
      command.option('--no-verify-codes', 'copy every changed track without comparing segment codes');
      command.option('--full-compare', 'compare the segment codes of every track, not only changed ones');
    }
    if (action === 'recover') {
      // A session whose secondary keeps a journal recovers at any point of it (the newest image without one of these).
      command.option('--at <time>', 'recover at the newest journal point at or before this ISO 8601 time');
      command.option('--bookmark <name>', 'recover at this journal bookmark');
      command.option('--point <seq>', "recover at this journal point (its seq, from 'journal points')", parsePointNumber);
    }
    command.action((name: string, options: AdminOptions & { verifyCodes?: boolean; fullCompare?: boolean; at?: string; bookmark?: string; point?: number }) =>
      withClient(options, async (client) => {
        const body =
          action === 'failback'
            ? { verifyCodes: options.verifyCodes !== false, fullCompare: options.fullCompare === true }
            : action === 'recover'
              ? journalPoint(options, false)
              : {};
        const updated = await client.call('POST', `/v1/sessions/${encodeURIComponent(name)}/actions/${action}`, SessionInfoSchema, body);
        if (options.json) printJson(updated);
        else print(sessionFields(updated));
      }),
    );
  }
  session
    .command('preflight <name>')
    .description('what a failback would copy, before anything moves')
    .option('--no-verify-codes', 'count changed tracks only, without comparing segment codes')
    .option('--full-compare', 'compare the segment codes of every track')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((name: string, options: AdminOptions & { verifyCodes?: boolean; fullCompare?: boolean }) =>
      withClient(options, async (client) => {
        const query = `verifyCodes=${options.verifyCodes !== false}&fullCompare=${options.fullCompare === true}`;
        const preflight = await client.call('GET', `/v1/sessions/${encodeURIComponent(name)}/failback-preflight?${query}`, FailbackPreflightSchema);
        if (options.json) printJson(preflight);
        else print(preflightFields(preflight));
      }),
    );
  session
    .command('verify <name>')
    .description('compare segment codes of a duplex session at both sites while writes go on; differing tracks are marked and copied')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((name: string, options: AdminOptions) =>
      withClient(options, async (checked) => {
        // The agent answers once every track is compared (minutes on big volumes).
        const report = await postUntilDone(checked, options, `/v1/sessions/${encodeURIComponent(name)}/verify`, VerifyReportSchema);
        if (options.json) printJson(report);
        else print(verifyFields(report));
      }),
    );
  session
    .command('set <name>')
    .description('change settings of a session, also while it runs (both sites learn them)')
    .option('--interval <seconds>', 'snapshot-shipping: seconds between cycles', parseInterval)
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((name: string, options: AdminOptions & { interval?: number }) =>
      withClient(options, async (client) => {
        if (options.interval === undefined) throw usageError('nothing to change: give --interval <seconds>');
        const updated = await client.call('PATCH', `/v1/sessions/${encodeURIComponent(name)}`, SessionInfoSchema, {
          shipIntervalSeconds: options.interval,
        });
        if (options.json) printJson(updated);
        else print(`${name}: ${updated.shipIntervalSeconds} s between shipping cycles`);
      }),
    );
  session
    .command('ship-now <name>')
    .description('snapshot shipping: run one cycle now; answers once the other site committed it')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((name: string, options: AdminOptions) =>
      withClient(options, async (checked) => {
        // A cycle ships every changed track (minutes for a big first cycle).
        const report = await postUntilDone(checked, options, `/v1/sessions/${encodeURIComponent(name)}/ship-now`, ShipCycleReportSchema);
        if (options.json) printJson(report);
        else
          print(
            formatFields([
              ['cycle', String(report.cycle)],
              ['consistency', report.time],
              ['tracks', String(report.tracks)],
              ['bytes sent', String(report.bytesSent)],
              ['took', `${(report.durationMs / 1000).toFixed(2)} s`],
            ]),
          );
      }),
    );
  session
    .command('show <name>')
    .description('state, consistency, exposure and copy sets of a session')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((name: string, options: AdminOptions) =>
      withClient(options, async (client) => {
        const found = await client.call('GET', `/v1/sessions/${encodeURIComponent(name)}`, SessionInfoSchema);
        if (options.json) printJson(found);
        else print(sessionFields(found));
      }),
    );
  registerSessionHistoryCommand(session);
  session
    .command('bitmap <name> <copy-set>')
    .description('the out-of-sync tracks of a copy set at this site, exactly (copy set: its id or a volume name)')
    .addOption(new Option('--which <bitmap>', 'out-of-sync (at the source) or target-changed (after a recover)').choices(['out-of-sync', 'target-changed']).default('out-of-sync'))
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((name: string, copySet: string, options: AdminOptions & { which: string }) =>
      withClient(options, async (client) => {
        const query = `which=${encodeURIComponent(options.which)}`;
        const found = await client.call('GET', `/v1/sessions/${encodeURIComponent(name)}/pairs/${encodeURIComponent(copySet)}/bitmap?${query}`, PairBitmapSchema);
        if (options.json) return printJson(found);
        if (!found.kept) return print(`${found.h1Volume} -> ${found.h2Volume}: this site keeps no ${found.which} bitmap for it`);
        const shown = found.runs.slice(0, 50).map(([start, count]) => (count === 1 ? String(start) : `${start}-${start + count - 1}`));
        print(
          `${found.h1Volume} -> ${found.h2Volume}: ${found.markedTracks} of ${found.trackCount} track(s) ${found.which}` +
            (shown.length ? `\n  ${shown.join(', ')}${found.runs.length > 50 ? `, ... (${found.runs.length - 50} more runs)` : ''}` : ''),
        );
      }),
    );
  session
    .command('list')
    .description('list sessions')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((options: AdminOptions) =>
      withClient(options, async (client) => {
        const { sessions } = await client.call('GET', '/v1/sessions', SessionListSchema);
        if (options.json) return printJson({ sessions });
        print(
          sessions.length
            ? formatTable(
                ['NAME', 'TYPE', 'STATE', 'HEALTH', 'DIRECTION', 'PAIRS', 'ROLE'],
                sessions.map((s) => [s.name, s.type, s.state, s.health, s.direction, String(s.pairs.length), s.role]),
              )
            : 'no sessions',
        );
      }),
    );
}
