import { InvalidArgumentError, type Command } from 'commander';
import {
  AlertListSchema,
  AlertSettingsSchema,
  alertSubjectText,
  SessionAlertThresholdsViewSchema,
  type AlertList,
  type AlertSettings,
  type SessionAlertThresholdsView,
  type SetAlertSettingsRequest,
  type SetSessionAlertThresholdsRequest,
} from '@tandem/contract';
import { dataOption, jsonOption, parseCount } from '../arguments.ts';
import { formatFields, formatTable, print, printJson, usageError } from '../output.ts';
import { withClient, type AdminOptions } from './admin.ts';

/** A threshold argument: a non-negative number, or `default` (null: inherit the site default). */
function parseThreshold(text: string): number | null {
  if (text === 'default') return null;
  if (!/^\d+(?:\.\d+)?$/.test(text)) throw new InvalidArgumentError(`'${text}' is not a number (or 'default')`);
  return Number(text);
}

function parseOnOff(text: string): boolean {
  if (text === 'on') return true;
  if (text === 'off') return false;
  throw new InvalidArgumentError(`'${text}' is not on or off`);
}

function alertTable(list: AlertList): string {
  const lines: string[] = [];
  if (list.active.length === 0) lines.push('no active alerts');
  else {
    lines.push(
      formatTable(
        ['SEVERITY', 'KIND', 'SUBJECT', 'SINCE', 'MESSAGE'],
        list.active.map((alert) => [alert.severity, alert.kind, alertSubjectText(alert.subject), alert.raisedAt, alert.message]),
      ),
    );
  }
  if (list.recent.length > 0) {
    lines.push('', 'recently cleared:');
    lines.push(
      formatTable(
        ['SEVERITY', 'KIND', 'SUBJECT', 'RAISED', 'CLEARED'],
        list.recent.map((alert) => [alert.severity, alert.kind, alertSubjectText(alert.subject), alert.raisedAt, alert.clearedAt ?? '-']),
      ),
    );
  }
  return lines.join('\n');
}

const orDefault = (value: number | boolean | null, unit = '') => (value === null ? 'default' : `${String(value)}${unit}`);

function settingsText(settings: AlertSettings): string {
  const defaults = settings.sessionDefaults;
  return formatFields([
    ['pool full at', `${settings.poolFullPercent} %`],
    ['webhook', settings.webhookUrl ?? 'none'],
    ['session defaults', ''],
    ['  RPO target', defaults.rpoTargetSeconds === null ? 'none (no exposure alerts)' : `${defaults.rpoTargetSeconds} s`],
    ['  link down after', `${defaults.linkDownSeconds} s`],
    ['  backlog at', `${defaults.backlogPercent} %`],
    ['  alerts', defaults.enabled ? 'on' : 'off'],
  ]);
}

function thresholdsText(view: SessionAlertThresholdsView): string {
  const { own, effective } = view;
  return formatFields([
    ['session', view.session],
    ['RPO target', `${effective.rpoTargetSeconds === null ? 'none' : `${effective.rpoTargetSeconds} s`} (${orDefault(own.rpoTargetSeconds, ' s')})`],
    ['link down after', `${effective.linkDownSeconds} s (${orDefault(own.linkDownSeconds, ' s')})`],
    ['backlog at', `${effective.backlogPercent} % (${orDefault(own.backlogPercent, ' %')})`],
    ['alerts', `${effective.enabled ? 'on' : 'off'} (${own.enabled === null ? 'default' : own.enabled ? 'on' : 'off'})`],
  ]);
}

interface SetOptions extends AdminOptions {
  session?: string;
  rpo?: number | null;
  linkDown?: number | null;
  backlog?: number | null;
  alerts?: boolean;
  poolFull?: number | null;
  webhook?: string;
}

/** `tandem-agent alerts list|set|show`: the agent's alerts and their thresholds. */
export function registerAlertCommands(program: Command): void {
  const alerts = program.command('alerts').description('alerts the agent raises (session suspended, link down, exposure over RPO, pool full, …) and their thresholds');

  alerts
    .command('list')
    .description('active alerts and the recently cleared ones')
    .option('--recent <count>', 'cleared alerts to show (0..1000)', parseCount, 20)
    .option('--session <name>', 'only alerts about this session')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((options: AdminOptions & { recent: number; session?: string }) =>
      withClient(options, async (client) => {
        const query = new URLSearchParams({ recent: String(options.recent) });
        if (options.session) query.set('session', options.session);
        const list = await client.call('GET', `/v1/alerts?${query}`, AlertListSchema);
        if (options.json) printJson(list);
        else print(alertTable(list));
      }),
    );

  alerts
    .command('show')
    .description('the site settings, or with --session the thresholds of one session')
    .option('--session <name>', 'one session\'s thresholds (its own and those in effect)')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((options: AdminOptions & { session?: string }) =>
      withClient(options, async (client) => {
        if (options.session) {
          const view = await client.call('GET', `/v1/sessions/${encodeURIComponent(options.session)}/alert-thresholds`, SessionAlertThresholdsViewSchema);
          if (options.json) printJson(view);
          else print(thresholdsText(view));
        } else {
          const settings = await client.call('GET', '/v1/alerts/settings', AlertSettingsSchema);
          if (options.json) printJson(settings);
          else print(settingsText(settings));
        }
      }),
    );

  alerts
    .command('set')
    .description('set thresholds: of one session (--session), else the site defaults; `default` resets a session value')
    .option('--session <name>', 'the session whose own thresholds to set')
    .option('--rpo <seconds>', 'RPO target: alert when the exposure is above it (default: none)', parseThreshold)
    .option('--link-down <seconds>', 'alert when a peer link is down this long (default 30)', parseThreshold)
    .option('--backlog <percent>', 'alert when an async backlog passes this share of its limit (default 80)', parseThreshold)
    .option('--alerts <on|off>', 'alerts for the session (or all sessions by default) on or off', parseOnOff)
    .option('--pool-full <percent>', 'site: alert when the pool is this full (default 90)', parseThreshold)
    .option('--webhook <url>', 'site: POST raised and cleared alerts to this URL as JSON; `none` for no webhook')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((options: SetOptions) =>
      withClient(options, async (client) => {
        if (options.session) {
          if (options.poolFull !== undefined || options.webhook !== undefined) throw usageError('--pool-full and --webhook are site settings: leave out --session');
          const body: SetSessionAlertThresholdsRequest = {};
          if (options.rpo !== undefined) body.rpoTargetSeconds = options.rpo;
          if (options.linkDown !== undefined) body.linkDownSeconds = options.linkDown;
          if (options.backlog !== undefined) body.backlogPercent = options.backlog;
          if (options.alerts !== undefined) body.enabled = options.alerts;
          if (Object.keys(body).length === 0) throw usageError('nothing to set: give --rpo, --link-down, --backlog or --alerts');
          const view = await client.call('PUT', `/v1/sessions/${encodeURIComponent(options.session)}/alert-thresholds`, SessionAlertThresholdsViewSchema, body);
          if (options.json) printJson(view);
          else print(thresholdsText(view));
          return;
        }
        const body: SetAlertSettingsRequest = {};
        const defaults: NonNullable<SetAlertSettingsRequest['sessionDefaults']> = {};
        if (options.rpo !== undefined) defaults.rpoTargetSeconds = options.rpo;
        for (const [name, value] of [['--link-down', options.linkDown], ['--backlog', options.backlog], ['--pool-full', options.poolFull]] as const) {
          if (value === null) throw usageError(`${name} default: only a session's thresholds can be reset to the default`);
        }
        if (options.linkDown != null) defaults.linkDownSeconds = options.linkDown;
        if (options.backlog != null) defaults.backlogPercent = options.backlog;
        if (options.alerts !== undefined) defaults.enabled = options.alerts;
        if (Object.keys(defaults).length > 0) body.sessionDefaults = defaults;
        if (options.poolFull != null) body.poolFullPercent = options.poolFull;
        if (options.webhook !== undefined) body.webhookUrl = options.webhook === 'none' ? null : options.webhook;
        if (Object.keys(body).length === 0) throw usageError('nothing to set: give --rpo, --link-down, --backlog, --alerts, --pool-full or --webhook');
        const settings = await client.call('PUT', '/v1/alerts/settings', AlertSettingsSchema, body);
        if (options.json) printJson(settings);
        else print(settingsText(settings));
      }),
    );
}
