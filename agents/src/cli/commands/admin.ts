import { InvalidArgumentError, type Command } from 'commander';
import { EventListQuerySchema, type AgentEvent, type EventStreamMessage, type PoolStats, type VolumeInfo } from '@tandem/contract';
import { AgentApiClient, type EventFilter } from '../api-client.ts';
import { dataOption, jsonOption, parseCount, parseSizeArgument } from '../arguments.ts';
import { formatFields, formatTable, print, printJson, size } from '../output.ts';

export interface AdminOptions {
  data: string;
  json?: boolean;
}

/** Runs an admin command against the agent running on `--data`, as the local admin. */
export async function withClient<T>(options: AdminOptions, action: (client: AgentApiClient) => Promise<T>): Promise<T> {
  const client = await AgentApiClient.forDataDir(options.data);
  try {
    return await action(client);
  } finally {
    client.close();
  }
}

function volumeTable(volumes: VolumeInfo[]): string {
  return formatTable(
    ['NAME', 'KIND', 'SIZE', 'ALLOCATED', 'SHARED', 'EXCLUSIVE', 'SOURCE', 'SNAPSHOTS', 'MODE'],
    volumes.map((volume) => [
      volume.name,
      volume.kind,
      size(volume.sizeBytes),
      size(volume.allocatedBytes),
      size(volume.sharedBytes),
      size(volume.exclusiveBytes),
      volume.source ?? '-',
      String(volume.snapshots.length),
      volume.readOnly ? 'ro' : 'rw',
    ]),
    [2, 3, 4, 5, 7],
  );
}

function volumeFields(volume: VolumeInfo): string {
  return formatFields([
    ['name', volume.name],
    ['kind', volume.kind],
    ['source', volume.source ?? '-'],
    ['size', `${size(volume.sizeBytes)} (${volume.sizeBytes} bytes)`],
    ['tracks', `${volume.trackCount} x ${size(volume.trackSize)}`],
    ['allocated', size(volume.allocatedBytes)],
    ['shared', size(volume.sharedBytes)],
    ['exclusive', size(volume.exclusiveBytes)],
    ['snapshots', volume.snapshots.join(', ') || '-'],
    ['mode', volume.readOnly ? 'read-only' : 'read-write'],
    ['created', volume.createdAt],
  ]);
}

function poolFields(pool: PoolStats): string {
  const ratio = pool.usedBytes > 0 ? (pool.provisionedBytes / pool.usedBytes).toFixed(1) : '-';
  return formatFields([
    ['track size', size(pool.trackSize)],
    ['extents', `${pool.usedExtents} used, ${pool.freeExtents} free, ${pool.extentCount} total`],
    ['shared extents', String(pool.sharedExtents)],
    ['used', size(pool.usedBytes)],
    ['provisioned', `${size(pool.provisionedBytes)} (thin ratio ${ratio})`],
    ['pool files', size(pool.fileBytes)],
    ['filesystem free', size(pool.filesystemFreeBytes)],
    ['volumes', `${pool.volumes} volumes, ${pool.snapshots} snapshots`],
  ]);
}

function eventLine(event: AgentEvent): string[] {
  return [String(event.id), event.time, event.severity, event.type, event.subject ?? '-', event.message];
}

const eventHeaders = ['ID', 'TIME', 'SEVERITY', 'TYPE', 'SUBJECT', 'MESSAGE'];

/** Prints events as they arrive until interrupted. */
async function followEvents(client: AgentApiClient, after: number, json: boolean): Promise<void> {
  const socket = await client.openEventStream(after);
  await new Promise<void>((resolve, reject) => {
    socket.on('message', (data) => {
      const message = JSON.parse(String(data)) as EventStreamMessage;
      if (message.kind !== 'event') return;
      if (json) process.stdout.write(`${JSON.stringify(message.event)}\n`);
      else print(eventLine(message.event).join('  '));
    });
    socket.on('error', reject);
    socket.on('close', () => resolve());
    const stop = () => socket.close(1000);
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}

export function registerAdminCommands(program: Command): void {
  const volume = program.command('volume').description('manage volumes on the running agent');

  volume
    .command('create')
    .argument('<name>', 'volume name')
    .argument('<size>', 'size, like 10G', parseSizeArgument)
    .description('create a thin volume (SIZE like 10G)')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((name: string, sizeBytes: number, options: AdminOptions) =>
      withClient(options, async (client) => {
        const created = await client.createVolume(name, sizeBytes);
        if (options.json) printJson(created);
        else print(`created volume ${created.name} (${size(created.sizeBytes)})`);
      }),
    );

  volume
    .command('list')
    .description('list volumes and snapshots')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((options: AdminOptions) =>
      withClient(options, async (client) => {
        const volumes = await client.listVolumes();
        if (options.json) printJson({ volumes });
        else print(volumes.length ? volumeTable(volumes) : 'no volumes');
      }),
    );

  volume
    .command('show <name>')
    .description('show one volume')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((name: string, options: AdminOptions) =>
      withClient(options, async (client) => {
        const found = await client.getVolume(name);
        if (options.json) printJson(found);
        else print(volumeFields(found));
      }),
    );

  volume
    .command('resize')
    .argument('<name>', 'volume name')
    .argument('<size>', 'new size, like 20G', parseSizeArgument)
    .description('grow a volume (shrinking is refused)')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((name: string, sizeBytes: number, options: AdminOptions) =>
      withClient(options, async (client) => {
        const resized = await client.resizeVolume(name, sizeBytes);
        if (options.json) printJson(resized);
        else print(`resized volume ${resized.name} to ${size(resized.sizeBytes)}`);
      }),
    );

  volume
    .command('delete <name>')
    .description('delete a volume or snapshot')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((name: string, options: AdminOptions) =>
      withClient(options, async (client) => {
        await client.deleteVolume(name);
        if (options.json) printJson({ deleted: name });
        else print(`deleted ${name}`);
      }),
    );

  const snapshot = program.command('snapshot').description('manage snapshots on the running agent');

  snapshot
    .command('create <source> <name>')
    .description('snapshot a volume (pointer copy, no data moved)')
    .addOption(dataOption())
    .option('--read-only', 'make the snapshot read-only')
    .addOption(jsonOption())
    .action((source: string, name: string, options: AdminOptions & { readOnly?: boolean }) =>
      withClient(options, async (client) => {
        const created = await client.createSnapshot(source, options.readOnly ? { name, readOnly: true } : { name });
        if (options.json) printJson(created);
        else print(`created snapshot ${created.name} of ${source}`);
      }),
    );

  snapshot
    .command('list [volume]')
    .description('list snapshots, of one volume or all')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((source: string | undefined, options: AdminOptions) =>
      withClient(options, async (client) => {
        const snapshots = source
          ? await client.listSnapshots(source)
          : (await client.listVolumes()).filter((entry) => entry.kind === 'snapshot');
        if (options.json) printJson({ volumes: snapshots });
        else print(snapshots.length ? volumeTable(snapshots) : 'no snapshots');
      }),
    );

  program
    .command('pool')
    .description('pool statistics')
    .command('show')
    .description('show pool usage')
    .addOption(dataOption())
    .addOption(jsonOption())
    .action((options: AdminOptions) =>
      withClient(options, async (client) => {
        const pool = await client.pool();
        if (options.json) printJson(pool);
        else print(poolFields(pool));
      }),
    );

  program
    .command('events')
    .description('list recent events (oldest first); --follow keeps printing new ones')
    .addOption(dataOption())
    .option('--after <id>', 'only events after this id', parseCount, 0)
    .option('--limit <count>', 'at most this many (1..1000)', parseCount, 200)
    .option('--subject <name>', 'only events about this subject (exact: a volume, session, flash session, cluster, site or client name)', parseEventSubject)
    .option('--type <list>', 'only these event types or families, comma-separated (session.state,flash.*), at most 20', parseEventTypes)
    .option('--exclude-type <list>', 'leave out these event types or families (same form)', parseEventTypes)
    .option('--newest', 'the newest --limit matching events instead of the oldest (still printed oldest first)')
    .option('--follow', 'keep printing new events until interrupted (not with --subject, --type or --exclude-type)')
    .addOption(jsonOption())
    .action((options: AdminOptions & EventFilter & { after: number; limit: number; follow?: boolean }, command: Command) => {
      if (options.follow && (options.subject !== undefined || options.type !== undefined || options.excludeType !== undefined)) {
        // The event stream is not filtered: followed events would not match what was asked for.
        command.error('error: --follow does not take --subject, --type or --exclude-type', { exitCode: 2 });
      }
      return withClient(options, async (client) => {
        const { subject, type, excludeType, newest } = options;
        const events = await client.events(options.after, options.limit, { subject, type, excludeType, newest });
        if (options.json) {
          if (options.follow) for (const event of events) process.stdout.write(`${JSON.stringify(event)}\n`);
          else printJson({ events });
        } else if (events.length) print(formatTable(eventHeaders, events.map(eventLine), [0]));
        else if (!options.follow) print('no events');
        if (options.follow) await followEvents(client, events.at(-1)?.id ?? options.after, options.json ?? false);
      });
    });
}

/** `--subject`: as EventListQuery takes it (1 to 256 characters). */
function parseEventSubject(text: string): string {
  const parsed = EventListQuerySchema.shape.subject.safeParse(text);
  if (!parsed.success) throw new InvalidArgumentError(`'${text}' is not a subject; use 1 to 256 characters`);
  return text;
}

/** `--type`, `--exclude-type`: as EventListQuery takes them (checked here, sent as given). */
function parseEventTypes(text: string): string {
  const parsed = EventListQuerySchema.shape.type.safeParse(text);
  if (!parsed.success) {
    throw new InvalidArgumentError(`'${text}' is not a list of event types: ${parsed.error.issues[0]?.message ?? 'malformed'}`);
  }
  return text;
}
