import { InvalidArgumentError, type Command } from 'commander';
import {
  ClusterHistorySchema,
  ClusterInfoSchema,
  ClusterListSchema,
  type ClusterHistory,
  type ClusterInfo,
} from '@tandem/contract';
import { dataOption, jsonOption, parseCount } from '../arguments.ts';
import { formatFields, formatTable, print, printJson } from '../output.ts';
import { withClient, type AdminOptions } from './admin.ts';

/** `--interval 2`, `--interval 0.5`: seconds. */
function parseSeconds(text: string): number {
  const value = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || !(value >= 0.05 && value <= 3600)) {
    throw new InvalidArgumentError(`'${text}' is not a number of seconds from 0.05 to 3600`);
  }
  return value;
}

const seconds = (value: number | null) => (value === null ? '-' : `${value.toFixed(1)} s`);

function clusterFields(cluster: ClusterInfo): string {
  const fields = formatFields([
    ['cluster', cluster.name],
    ['health', cluster.health],
    ['consistency', cluster.consistencyTime ?? '-'],
    ['exposure', seconds(cluster.exposureSeconds)],
    ['processor', `${cluster.processorSite}, every ${cluster.intervalSeconds} s; members unknown after ${cluster.timeoutSeconds} s`],
    ['consolidated', cluster.consolidatedAt ?? '-'],
    [
      'master data set',
      `${cluster.masterDataSet.records} record(s), last #${cluster.masterDataSet.lastSequence}, ${cluster.masterDataSet.bytes} bytes`,
    ],
  ]);
  if (cluster.members.length === 0) return `${fields}\n\nno members yet`;
  const members = formatTable(
    ['SESSION', 'SITE', 'STATUS', 'STATE', 'HEALTH', 'CONSISTENCY', 'EXPOSURE', 'DETAIL'],
    cluster.members.map((member) => [
      member.session,
      member.site,
      member.status,
      member.state,
      member.health,
      member.consistencyTime ?? '-',
      seconds(member.exposureSeconds),
      member.detail ?? '-',
    ]),
    [6],
  );
  return `${fields}\n\n${members}`;
}

function historyTable(history: ClusterHistory): string {
  if (history.records.length === 0) return `no records yet in the master data set of ${history.cluster} at ${history.site}`;
  const table = formatTable(
    ['#', 'TIME', 'HEALTH', 'CONSISTENCY', 'EXPOSURE', 'MEMBERS'],
    history.records.map((record) => [
      String(record.sequence),
      record.time,
      record.health,
      record.consistencyTime ?? '-',
      seconds(record.exposureSeconds),
      record.members.map((member) => `${member.session}@${member.site}:${member.status === 'unknown' ? 'unknown' : member.state}`).join(' '),
    ]),
    [0, 4],
  );
  return history.damage ? `${table}\n\nwarning: ${history.damage}` : table;
}

const path = (name: string, rest = '') => `/v1/clusters/${encodeURIComponent(name)}${rest}`;

/** `cluster …`: sessions coupled into clusters, consolidated into master data sets. */
export function registerClusterCommands(program: Command): void {
  const cluster = program.command('cluster').description('clusters of sessions and their master data sets');
  cluster
    .command('create <name>')
    .description('define a cluster here; this agent runs its processor and keeps its master data set')
    .option('--interval <seconds>', 'seconds between consolidations (default 2)', parseSeconds)
    .option('--timeout <seconds>', 'a member silent this long is unknown (default 3 intervals)', parseSeconds)
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((name: string, options: AdminOptions & { interval?: number; timeout?: number }) =>
      withClient(options, async (client) => {
        const created = await client.call('POST', '/v1/clusters', ClusterInfoSchema, {
          name,
          intervalSeconds: options.interval,
          timeoutSeconds: options.timeout,
        });
        if (options.json) printJson(created);
        else print(`created cluster ${created.name} (every ${created.intervalSeconds} s)`);
      }),
    );
  cluster
    .command('set <name>')
    .description("change a cluster's interval or timeout")
    .option('--interval <seconds>', 'seconds between consolidations', parseSeconds)
    .option('--timeout <seconds>', 'a member silent this long is unknown', parseSeconds)
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((name: string, options: AdminOptions & { interval?: number; timeout?: number }) =>
      withClient(options, async (client) => {
        const updated = await client.call('PATCH', path(name), ClusterInfoSchema, {
          intervalSeconds: options.interval,
          timeoutSeconds: options.timeout,
        });
        if (options.json) printJson(updated);
        else print(`cluster ${updated.name}: every ${updated.intervalSeconds} s, members unknown after ${updated.timeoutSeconds} s`);
      }),
    );
  cluster
    .command('add <name> <session>')
    .description('add a session to a cluster: one of this agent, or (with --agent) one a paired site reports')
    .option('--agent <site>', 'the paired site whose agent reports the session')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((name: string, session: string, options: AdminOptions & { agent?: string }) =>
      withClient(options, async (client) => {
        const updated = await client.call('POST', path(name, '/members'), ClusterInfoSchema, { session, site: options.agent });
        if (options.json) printJson(updated);
        else print(`added ${session}${options.agent ? `@${options.agent}` : ''} to cluster ${name}`);
      }),
    );
  cluster
    .command('remove <name> <session>')
    .description('remove a session from a cluster')
    .option('--agent <site>', 'the site of the member, when the session is a member at several sites')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((name: string, session: string, options: AdminOptions & { agent?: string }) =>
      withClient(options, async (client) => {
        const query = options.agent ? `?site=${encodeURIComponent(options.agent)}` : '';
        const updated = await client.call('DELETE', path(name, `/members/${encodeURIComponent(session)}${query}`), ClusterInfoSchema);
        if (options.json) printJson(updated);
        else print(`removed ${session} from cluster ${name}`);
      }),
    );
  cluster
    .command('delete <name>')
    .description('delete a cluster and its master data set (the sessions are not touched)')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((name: string, options: AdminOptions) =>
      withClient(options, async (client) => {
        await client.call('DELETE', path(name), null);
        if (options.json) printJson({ deleted: name });
        else print(`deleted cluster ${name}`);
      }),
    );
  cluster
    .command('show <name>')
    .description('consolidated health, consistency time and exposure of a cluster, and its members')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((name: string, options: AdminOptions) =>
      withClient(options, async (client) => {
        const found = await client.call('GET', path(name), ClusterInfoSchema);
        if (options.json) printJson(found);
        else print(clusterFields(found));
      }),
    );
  cluster
    .command('list')
    .description('list the clusters defined here')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((options: AdminOptions) =>
      withClient(options, async (client) => {
        const { clusters } = await client.call('GET', '/v1/clusters', ClusterListSchema);
        if (options.json) return printJson({ clusters });
        print(
          clusters.length
            ? formatTable(
                ['NAME', 'HEALTH', 'CONSISTENCY', 'EXPOSURE', 'MEMBERS', 'UNKNOWN', 'RECORDS'],
                clusters.map((c) => [
                  c.name,
                  c.health,
                  c.consistencyTime ?? '-',
                  seconds(c.exposureSeconds),
                  String(c.members.length),
                  String(c.members.filter((member) => member.status === 'unknown').length),
                  String(c.masterDataSet.records),
                ]),
                [3, 4, 5, 6],
              )
            : 'no clusters',
        );
      }),
    );
  cluster
    .command('history <name>')
    .description('the latest records of a master data set, kept here or (with --site) at a paired site')
    .option('--limit <count>', 'at most this many records (1..10000)', parseCount, 20)
    .option('--site <site>', 'read the master data set the paired site keeps (over the peer link)')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((name: string, options: AdminOptions & { limit: number; site?: string }) =>
      withClient(options, async (client) => {
        const query = `?limit=${options.limit}${options.site ? `&site=${encodeURIComponent(options.site)}` : ''}`;
        const history = await client.call('GET', path(name, `/history${query}`), ClusterHistorySchema);
        if (options.json) printJson(history);
        else print(historyTable(history));
      }),
    );
}
