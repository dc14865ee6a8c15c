import { access } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import { formatSize, roles, type Role } from '@tandem/contract';
import { dataDirPaths } from '../../data-dir.ts';
import type { CheckReport } from '../../storage/check.ts';
import { DataDirLock, readIdentity, readRunInfo } from '../data-dir-files.ts';
import { defaultAuditRetention } from '../../storage/audit-log.ts';
import { dataOption, jsonOption, parseHostPort, parsePositiveCount, parseSiteName, parseTrackSize } from '../arguments.ts';
import { CliError, formatFields, print, printJson } from '../output.ts';

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

interface InitOptions {
  data: string;
  site: string;
  trackSize: number;
  json?: boolean;
}

async function init(options: InitOptions): Promise<void> {
  const paths = dataDirPaths(options.data);
  if (await exists(paths.identity)) {
    throw new CliError(`${paths.root} is already an agent data dir (agent.json exists)`, 1, 'already-exists');
  }
  const [{ initDataDir }, { initTls }] = await Promise.all([import('../../storage/init.ts'), import('../../tls/files.ts')]);
  const identity = await initDataDir(paths.root, { site: options.site, trackSize: options.trackSize });
  const tls = await initTls(paths.root, identity);
  const result = {
    dataDir: paths.root,
    site: identity.site,
    agentId: identity.agentId,
    trackSize: identity.trackSize,
    certificateFingerprint: tls.serverFingerprint,
  };
  if (options.json) return printJson(result);
  print(`initialized ${paths.root}`);
  print(
    formatFields([
      ['site', result.site],
      ['agent id', result.agentId],
      ['track size', formatSize(result.trackSize)],
      ['certificate', result.certificateFingerprint],
    ]),
  );
}

interface RunOptions {
  data: string;
  api: { host: string; port: number };
  nbd: { host: string; port: number } | false;
  nbdSocket?: string;
  tls?: boolean;
  link: { host: string; port: number };
  metrics?: { host: string; port: number };
  logLevel: string;
  auditKeepDays: number;
  auditKeepRows: number;
}

async function run(options: RunOptions): Promise<void> {
  const [{ default: pino }, { startAgent, closeOnSignals }, { systemdNotifier }] = await Promise.all([
    import('pino'),
    import('../../agent.ts'),
    import('../../systemd.ts'),
  ]);
  const logger = pino({ level: options.logLevel, base: { pid: process.pid } }, pino.destination(2));
  // Under systemd (Type=notify); before anything listens, so a missing addon stops the start at once.
  const systemd = systemdNotifier();
  let agent: Awaited<ReturnType<typeof startAgent>>;
  try {
    agent = await startAgent({
      dataDir: options.data,
      api: options.api,
      nbd: options.nbd === false ? null : options.nbd,
      nbdSocket: options.nbdSocket ?? null,
      nbdTls: options.tls ?? false,
      link: options.link,
      metrics: options.metrics ?? null,
      auditRetention: { maxDays: options.auditKeepDays, maxRows: options.auditKeepRows },
      logger,
    });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ERR_NBD_TLS_REQUIRED') throw new CliError((error as Error).message, 2, 'bad-request');
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      const { address, port, listener } = error as { address?: string; port?: number; listener?: string };
      const where = port === undefined ? (address ?? '') : `${address}:${port}`;
      if (listener === 'metrics') throw new CliError(`cannot listen for metrics (--metrics) on ${where}: ${code}; nothing was started`, 1, 'conflict');
      throw new CliError(`cannot listen on ${where}: ${code}`, 1, 'conflict');
    }
    throw error;
  }
  closeOnSignals(agent, logger, { systemd });
  const { info } = agent;
  const fields: Array<[string, string]> = [
    ['site', `${info.site} (agent ${info.agentId}, version ${info.version})`],
    ['api', `https://${info.apiAddress}`],
  ];
  if (info.nbdAddress) fields.push(['nbd', options.tls ? `nbds://${info.nbdAddress} (TLS required)` : `nbd://${info.nbdAddress}`]);
  if (info.nbdSocket) fields.push(['nbd socket', info.nbdSocket]);
  if (agent.runInfo.linkAddress) fields.push(['peer link', agent.runInfo.linkAddress]);
  if (agent.runInfo.metricsAddress) fields.push(['metrics', `http://${agent.runInfo.metricsAddress}/metrics`]);
  fields.push(['certificate', info.certificateFingerprint]);
  print(formatFields(fields));
  print('ready');
  // Every listener listens now (startAgent returned): systemd may start what depends on the agent.
  systemd?.ready(`serving ${info.site}: api ${info.apiAddress}${info.nbdAddress ? `, nbd ${info.nbdAddress}` : ''}${agent.runInfo.linkAddress ? `, peer link ${agent.runInfo.linkAddress}` : ''}`);
}

async function token(options: { data: string; json?: boolean; role: Role }): Promise<void> {
  const paths = dataDirPaths(options.data);
  await readIdentity(paths.root);
  const [{ Catalog }, { createPairingToken }, { certificateFingerprint }, { tlsPaths }, { readFile }] = await Promise.all([
    import('../../storage/catalog.ts'),
    import('../../tls/pairing.ts'),
    import('../../tls/fingerprint.ts'),
    import('../../tls/files.ts'),
    import('node:fs/promises'),
  ]);
  const fingerprint = certificateFingerprint(await readFile(tlsPaths(paths.root).serverCertificate, 'utf8'));
  const catalog = new Catalog(paths.catalog);
  let created: { token: string; expiresAt: string; role: Role };
  try {
    created = createPairingToken(catalog.db, options.role);
  } finally {
    catalog.close();
  }
  if (options.json) return printJson({ ...created, certificateFingerprint: fingerprint });
  print(created.token);
  process.stderr.write(
    `one-time pairing token for the ${created.role} role, valid until ${created.expiresAt}; it is not shown again.\n` +
      `the agent's certificate fingerprint is ${fingerprint}\n`,
  );
}

async function check(options: { data: string; json?: boolean }): Promise<void> {
  const paths = dataDirPaths(options.data);
  await readIdentity(paths.root);
  let lock: DataDirLock;
  try {
    lock = DataDirLock.acquireSync(paths.root);
  } catch {
    const running = await readRunInfo(paths.root);
    const who = running ? `an agent (pid ${running.pid})` : 'another process';
    throw new CliError(`${who} is using ${paths.root}; stop it before checking the pool offline`, 1, 'conflict');
  }
  let report: CheckReport;
  try {
    const { checkDataDir } = await import('../../storage/check.ts');
    report = await checkDataDir(paths.root);
  } finally {
    lock.release();
  }
  if (options.json) printJson(report);
  else {
    const { volumes, snapshots, usedExtents, sharedExtents, replayedRecords } = report.summary;
    const summary =
      `${volumes} volume(s), ${snapshots} snapshot(s), ${usedExtents} used extent(s) (${sharedExtents} shared), ` +
      `${replayedRecords} WAL record(s) replayed`;
    if (report.clean) print(`clean: ${summary}`);
    else {
      print(`NOT CLEAN: ${report.problems.length} problem(s) in ${paths.root}`);
      for (const problem of report.problems) print(`  - ${problem}`);
      print(summary);
    }
    for (const note of report.notes) print(`note: ${note}`);
  }
  if (!report.clean) process.exitCode = 1;
}

export function registerSetupCommands(program: Command): void {
  program
    .command('init')
    .description('create a data dir: pool, metadata, catalog, CA and certificates')
    .addOption(dataOption())
    .requiredOption('--site <name>', 'site name', parseSiteName)
    .option('--track-size <size>', 'track size, a power of two from 4K to 1M', parseTrackSize, 64 * 1024)
    .addOption(jsonOption())
    .action(init);

  program
    .command('run')
    .description('run the agent: control API (HTTPS) and NBD')
    .addOption(dataOption())
    .option('--api <host:port>', 'control API address', parseHostPort, { host: '127.0.0.1', port: 7450 })
    .option('--nbd <host:port>', 'NBD TCP address', parseHostPort, { host: '127.0.0.1', port: 10809 })
    .option('--no-nbd', 'no NBD TCP listener')
    .option('--nbd-socket <path>', 'also serve NBD on a Unix socket')
    .option('--tls', 'NBD over TCP requires TLS (client certificate from this agent\'s CA or PSK key: nbd-client add); needed unless --nbd is a loopback address')
    .option('--link <host:port>', 'peer link address (mirroring between sites)', parseHostPort, { host: '127.0.0.1', port: 7451 })
    .option('--metrics <host:port>', 'serve Prometheus metrics at http://HOST:PORT/metrics (plain HTTP, no authentication; off by default)', parseHostPort)
    .addOption(
      new Option('--audit-keep-days <days>', 'keep audit trail entries this many days')
        .argParser(parsePositiveCount)
        .env('TANDEM_AUDIT_KEEP_DAYS')
        .default(defaultAuditRetention.maxDays),
    )
    .addOption(
      new Option('--audit-keep-rows <count>', 'keep at most this many audit trail entries (the newest)')
        .argParser(parsePositiveCount)
        .env('TANDEM_AUDIT_KEEP_ROWS')
        .default(defaultAuditRetention.maxRows),
    )
    .addOption(
      new Option('--log-level <level>', 'log level (JSON logs go to stderr)')
        .choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
        .env('TANDEM_LOG_LEVEL')
        .default('info'),
    )
    .action(run);

  program
    .command('token')
    .description('print a one-time pairing token (valid 15 minutes) that pairs a console as --role')
    .addOption(dataOption())
    .addOption(
      new Option('--role <role>', 'what the paired console may do: monitor (read only), operator (session and flash actions), administrator (everything)')
        .choices(roles)
        .default('administrator'),
    )
    .addOption(jsonOption())
    .action(token);

  program
    .command('check')
    .description('verify a stopped agent\'s pool and metadata offline')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action(check);
}
