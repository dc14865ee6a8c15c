import { writeFile } from 'node:fs/promises';
import { InvalidArgumentError, type Command } from 'commander';
import { auditAction, auditCsv, AuditListQuerySchema, AuditListSchema, auditResult, auditWho, type AuditList } from '@tandem/contract';
import type { AgentApiClient } from '../api-client.ts';
import { dataOption, jsonOption, parsePositiveCount } from '../arguments.ts';
import { formatTable, print, printJson, usageError } from '../output.ts';
import { withClient, type AdminOptions } from './admin.ts';
import { parseDuration } from './session-history.ts';

interface AuditOptions extends AdminOptions {
  since?: string;
  limit: number;
  session?: string;
  csv?: boolean;
}

/** `--since`: a duration back from now (90s, 10m, 24h, 7d) or an ISO time; answered as an ISO time. */
export function parseSince(text: string): string {
  if (/^\d+(?:\.\d+)?[smhd]$/.test(text)) return new Date(Date.now() - parseDuration(text) * 1000).toISOString();
  if (!AuditListQuerySchema.shape.since.safeParse(text).success) {
    throw new InvalidArgumentError(`'${text}' is neither a duration (90s, 10m, 24h, 7d) nor an ISO time like 2026-01-01T12:00:00Z`);
  }
  return text;
}

function parseSession(text: string): string {
  if (!AuditListQuerySchema.shape.session.safeParse(text).success) throw new InvalidArgumentError(`'${text}' is not a session name`);
  return text;
}

async function fetchAudit(client: AgentApiClient, options: AuditOptions): Promise<AuditList> {
  const query = new URLSearchParams({ limit: String(options.limit) });
  if (options.since !== undefined) query.set('since', options.since);
  if (options.session !== undefined) query.set('session', options.session);
  return client.call('GET', `/v1/audit?${query}`, AuditListSchema);
}

function auditTable(list: AuditList): string {
  if (list.entries.length === 0) return 'no audit entries';
  const table = formatTable(
    ['ID', 'TIME', 'WHO', 'ACTION', 'TARGET', 'RESULT'],
    list.entries.map((entry) => [String(entry.id), entry.time, auditWho(entry), auditAction(entry), entry.target ?? '-', auditResult(entry)]),
    [0],
  );
  return list.truncated ? `${table}\n(older entries left out: raise --limit or narrow --since)` : table;
}

function addFilters(command: Command): Command {
  return command
    .option('--since <when>', 'only entries since: a duration back (90s, 10m, 24h, 7d) or an ISO time', parseSince)
    .option('--limit <count>', 'at most this many, the newest (1..10000)', parsePositiveCount, 1000)
    .option('--session <name>', 'only calls whose route names this session', parseSession)
    .addOption(dataOption());
}

/** `tandem-agent audit list|export`: the agent's audit trail of state-changing API calls. */
export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('the audit trail: every state-changing API call, who made it and its result');

  addFilters(audit.command('list').description('list audit entries (oldest first; the newest --limit)'))
    .addOption(jsonOption())
    .option('--csv', 'CSV (the columns of GET /v1/audit?format=csv)')
    .action((options: AuditOptions) => {
      if (options.json && options.csv) throw usageError('--json and --csv exclude each other');
      return withClient(options, async (client) => {
        const list = await fetchAudit(client, options);
        if (options.json) printJson(list);
        else if (options.csv) process.stdout.write(auditCsv(list.entries.map((entry) => ({ site: list.site, entry }))));
        else print(auditTable(list));
      });
    });

  addFilters(audit.command('export <file>').description('write audit entries to FILE as CSV (default) or JSON (--format json)'))
    .option('--format <format>', 'csv or json', (text: string) => {
      if (text !== 'csv' && text !== 'json') throw new InvalidArgumentError(`'${text}' is not csv or json`);
      return text;
    }, 'csv')
    .addOption(jsonOption())
    .action((file: string, options: AuditOptions & { format: 'csv' | 'json' }) =>
      withClient(options, async (client) => {
        const list = await fetchAudit(client, options);
        const text = options.format === 'json' ? `${JSON.stringify(list, null, 2)}\n` : auditCsv(list.entries.map((entry) => ({ site: list.site, entry })));
        await writeFile(file, text, { mode: 0o600 });
        if (options.json) printJson({ file, entries: list.entries.length, truncated: list.truncated });
        else print(`wrote ${list.entries.length} audit entries to ${file}${list.truncated ? ' (older entries left out: raise --limit)' : ''}`);
      }),
    );
}
