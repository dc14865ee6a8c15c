/**
 * Fault campaigns: real `tandem-agent` processes mirroring a session while
 * real NBD writers write, a fault-injecting TCP proxy on every link from a
 * primary agent to the secondary, faults at random (seeded) moments, and
 * byte-for-byte checks of what the sites hold. One runner for every mode;
 * a mode is data (TOPOLOGIES): the session type, which agents hold primary
 * volumes, the copy sets, and whether one joins the running session.
 *
 * Sites. `sync`, `semi-sync`, `async`, `snapshot-shipping`: alpha (H1) ->
 * beta (H2). `async-multi-primary`: alpha (the control agent, H1 of `a`) and bravo
 * (a member, H1 of `b`) -> charlie (H2). `joining`: an async session alpha
 * -> beta with one copy set; a second volume, written from the start, is
 * added to the running session while the faults go on (its initial copy
 * runs under faults) and must end up identical too. Each primary's link to
 * the secondary goes through its own FaultProxy (`PATCH /v1/peers/:site`,
 * what `tandem-agent peers set-link` does); reads for the checks go
 * straight to each agent's own NBD export (a target volume serves reads).
 *
 * Writers. `connections` NBD connections to the primaries' exports, each
 * with `queueDepth` 4 KiB writes in flight at random 4 KiB-aligned offsets,
 * about half with FUA. Every block is self-describing (campaign-blocks.ts):
 * a read tells which write of that block it holds. The ledger records per
 * block the generations issued, acknowledged and acknowledged with FUA.
 * Writers survive kills of their agent (in-flight writes become unknown;
 * they dial again once it is back).
 *
 * Faults (counts per kind are options; order, moments and durations come
 * from the seed; writers run for `gapMs` between faults):
 * - `link-reset`: the proxy resets every connection (RST to both sides).
 * - `stall-drop`: the proxy forwards nothing for `stallMs`, connections stay
 *   open, what arrives is dropped (a path losing everything; past 5 s the
 *   agents' heartbeats declare the link dead, before that the TLS stream
 *   breaks when forwarding resumes).
 * - `stall-hold`: the same, but what arrives is held and delivered when the
 *   stall ends. With probability `abandonSenders` the dialling side is reset
 *   midway (the sender gives up and dials again): what it had sent still
 *   reaches the receiver afterwards, after the new connection's traffic —
 *   stale requests of a connection the sender already gave up on.
 * - `kill-h1`: kill -9 of a primary agent (alpha, or bravo in multi-primary),
 *   restart on the same ports, wait until it is ready.
 * - `kill-h2`: kill -9 of the secondary, restart on the same ports.
 * - `kill-h1-cut`: every link is cut (reset, then dropping) until a primary
 *   agent's session is suspended there, that agent is killed -9 and
 *   restarted while the links stay cut, the writers write to it for a
 *   while, then the links heal: the restarted agent must mark what hosts
 *   write while it does not mirror, and resume by itself.
 * Nothing else waits a fixed time: states are polled with deadlines.
 *
 * Checks.
 * a) Coverage, at quiescent moments (after every `checkEvery` faults, after
 *    every fault of a kind in `checkAfter`, and at the end): writers stopped, every proxy reset and swallowing everything
 *    (nothing crosses a link), then both sites' volumes are read whole and
 *    each copy set's out-of-sync bitmap is read at its primary agent
 *    (`GET /v1/sessions/:name/pairs/:pair/bitmap`, as `session bitmap`).
 *    Every track whose bytes differ must be marked: the bitmap is what a
 *    resync, a failback or a restart relies on, so a differing track it does
 *    not name is one that would never be repaired ("uncovered"). H1 cannot
 *    change while frozen (no writes, no acknowledgements reach it); H2 may
 *    still apply what it staged, which only moves it towards H1 on tracks
 *    that stay marked until H1 hears about them; a track found unmarked is
 *    judged again once H2's image stopped changing (semi-sync applies what it
 *    acknowledged on arrival a moment later).
 * b) Drain: links healed; once the session is Prepared again by itself,
 *    every copy set duplex with 0 out-of-sync tracks, every bitmap empty and
 *    (async, shipping) the consistency time past the writers' stop
 *    (snapshot shipping: `ship-now` after the writers stopped), both sites
 *    are read whole and compared track by track (64 KiB): tracks differing
 *    then are lost writes (re-read for a while first, so only differences
 *    that stay count). Then `session verify` (segment codes at both sites;
 *    not for shipping) must find 0 differing tracks and `qemu-img compare`
 *    of the two exports must say identical.
 * c) Acknowledged writes: every block of every primary volume must hold a
 *    write issued for it, no older than its last FUA-acknowledged write nor
 *    than its last acknowledged write when its agent was not killed since
 *    (NBD promises durability only for FUA/FLUSH; a kill -9 may lose an
 *    acknowledged non-FUA write, never a FUA one). With b), H2 then holds
 *    every acknowledged write too.
 * d) Resumption: from the first fault to the end of the drain the session
 *    must come back by itself; one that stays suspended with no transition
 *    for 30 s is a failure (then resumed by hand, so the campaign goes on).
 * A campaign passes when no track differs after the drain, no track was
 * uncovered, no block broke c), verify and qemu-img agree, nothing got stuck.
 */
import type { AgentEvent, PairBitmap, SessionInfo, SessionType, ShipCycleReport, VerifyReport } from '@tandem/contract';
import { startPairedAgents, type AgentProcess, type StartAgentOptions } from './agent-process.ts';
import { BLOCK, describeParsed, parseBlock, VolumeLedger } from './campaign-blocks.ts';
import { Rng } from './campaign-rng.ts';
import { CampaignWriters, sleep, type WriterStats } from './campaign-writers.ts';
import { FaultProxy, type StallMode } from './fault-proxy.ts';
import { NbdPipe } from './nbd-pipe.ts';
import { agentCliJson, runCommand } from './run-command.ts';

export const campaignModes = ['sync', 'semi-sync', 'async', 'snapshot-shipping', 'async-multi-primary', 'joining'] as const;
export type CampaignMode = (typeof campaignModes)[number];

export const faultKinds = ['link-reset', 'stall-drop', 'stall-hold', 'kill-h1', 'kill-h2', 'kill-h1-cut'] as const;
export type FaultKind = (typeof faultKinds)[number];
export type FaultCounts = Record<FaultKind, number>;

interface CopySetSpec {
  /** The site holding the H1 volume. */
  primary: string;
  h1: string;
  h2: string;
  /** Added to the running session while the faults go on (it holds data by then). */
  joinsLater?: boolean;
}

interface Topology {
  type: SessionType;
  /** Sites holding primary volumes; the first is where the session is defined (the control agent). */
  primaries: string[];
  secondary: string;
  copySets: CopySetSpec[];
}

const single = (type: SessionType): Topology => ({
  type,
  primaries: ['alpha'],
  secondary: 'beta',
  copySets: [{ primary: 'alpha', h1: 'a', h2: 'a2' }],
});

/** The modes as data. */
export const TOPOLOGIES: Record<CampaignMode, Topology> = {
  sync: single('sync'),
  'semi-sync': single('semi-sync'),
  async: single('async'),
  'snapshot-shipping': single('snapshot-shipping'),
  'async-multi-primary': {
    type: 'async',
    primaries: ['alpha', 'bravo'],
    secondary: 'charlie',
    copySets: [
      { primary: 'alpha', h1: 'a', h2: 'a2' },
      { primary: 'bravo', h1: 'b', h2: 'b2' },
    ],
  },
  joining: {
    type: 'async',
    primaries: ['alpha'],
    secondary: 'beta',
    copySets: [
      { primary: 'alpha', h1: 'a', h2: 'a2' },
      { primary: 'alpha', h1: 'j', h2: 'j2', joinsLater: true },
    ],
  },
};

export interface CampaignOptions {
  mode: CampaignMode;
  seed: number;
  /** Faults to inject, per kind; or, without it, `linkFaults` and `kills` split at random by the seed (`faultMix`). */
  faults?: FaultCounts;
  linkFaults?: number;
  kills?: number;
  /** Size of every volume, MiB. */
  volumeMiB?: number;
  /** NBD connections writing (spread over the primary volumes) and writes in flight on each. */
  connections?: number;
  queueDepth?: number;
  /** Writers run this long (ms, drawn from the range) before each fault and after the last. */
  gapMs?: [number, number];
  /** How long a stall lasts, ms. */
  stallMs?: [number, number];
  /** How long after a holding stall's end the bytes of given-up connections arrive, ms. */
  staleDelayMs?: [number, number];
  /** Probability that a holding stall resets the senders midway (they give up and dial again). */
  abandonSenders?: number;
  /** A coverage check after every this many faults (0: only at the end). */
  checkEvery?: number;
  /**
   * A coverage check right after every fault of these kinds too (default: holding stalls, whose late
   * bytes may undo what a resync copied; later faults and writes can hide that again before the end).
   */
  checkAfter?: FaultKind[];
  /** Longest wait for the session to drain after the faults, ms. */
  drainTimeoutMs?: number;
  /** Shipping interval of a snapshot-shipping session, seconds. */
  shipIntervalSeconds?: number;
  /** Progress lines (faults as they happen, checks). */
  log?: (line: string) => void;
  /** Keep the agents' data dirs when the campaign fails (their paths are in the diagnostics). */
  keepDataOnFailure?: boolean;
}

export interface CampaignStats {
  mode: CampaignMode;
  seed: number;
  durationMs: number;
  /** Faults injected, per kind. */
  faults: FaultCounts;
  /** What the proxies saw (summed over them). */
  proxy: {
    resets: number;
    socketsReset: number;
    connections: number;
    bytesDropped: number;
    bytesHeld: number;
    staleBytesDelivered: number;
    staleConnections: number;
    sendersAbandoned: number;
  };
  /** Times the session stayed suspended with no transition for 30 s (it did not resume by itself) and was resumed by hand. */
  stuckSuspensions: number;
  /** Link resets that found connections to reset (a reset while the link is down hits nothing). */
  linkResetsHit: number;
  /** Agent restarts after kill -9, per site. */
  restarts: Record<string, number>;
  writes: WriterStats;
  /** Acknowledged writes behind the blocks checked at the end, and those blocks. */
  ackedWritesChecked: number;
  blocksChecked: number;
  /** Blocks holding something the ledger does not allow (summed over every check). */
  ackViolations: number;
  coverageChecks: number;
  /** Tracks differing at coverage checks (marked or not), summed. */
  differingAtChecks: number;
  /** Tracks differing at a coverage check and not marked in the source's out-of-sync bitmap, summed. */
  uncoveredTracks: number;
  /** Tracks compared after the drain (all copy sets), and those that differed. */
  tracksCompared: number;
  tracksDiffering: number;
  /** `session verify` after the drain: differing tracks (null: not run, shipping). */
  verifyDifferingTracks: number | null;
  /** `qemu-img compare` of every copy set said identical. */
  qemuImgIdentical: boolean | null;
  /** Every problem found, in words (empty: the campaign passed). */
  failures: string[];
  /** Fault timeline merged with the agents' session/pair/link events, and detail on what differed (for a failure). */
  diagnostics: string;
}

/**
 * A random split of `linkFaults` link faults (resets half, stalls of each
 * flavour a quarter) and `kills` kills (H2 half; H1 a third of the rest
 * while the links are cut, `kill-h1-cut`, which also counts as a link fault's worth of cut).
 */
export function faultMix(linkFaults: number, kills: number, rng: Rng): FaultCounts {
  const counts: FaultCounts = { 'link-reset': 0, 'stall-drop': 0, 'stall-hold': 0, 'kill-h1': 0, 'kill-h2': 0, 'kill-h1-cut': 0 };
  for (let i = 0; i < linkFaults; i++) {
    const draw = rng.next();
    counts[draw < 0.5 ? 'link-reset' : draw < 0.75 ? 'stall-drop' : 'stall-hold']++;
  }
  for (let i = 0; i < kills; i++) {
    const draw = rng.next();
    counts[draw < 0.5 ? 'kill-h2' : draw < 5 / 6 ? 'kill-h1' : 'kill-h1-cut']++;
  }
  return counts;
}

const MiB = 1024 * 1024;
const TRACK = 64 * 1024;
const SESSION = 'campaign';
/** A session suspended this long with no transition did not resume by itself (link redial backoff is at most 5 s). */
const STUCK_SUSPENDED_MS = 30_000;

export async function runCampaign(options: CampaignOptions): Promise<CampaignStats> {
  const campaign = new Campaign(options);
  return campaign.run();
}

interface CopySet extends CopySetSpec {
  ledger: VolumeLedger;
  /** In the session (added at the start, or joined later). */
  inSession: boolean;
}

interface TimelineEntry {
  at: number;
  text: string;
}

class Campaign {
  private readonly topology: Topology;
  private readonly rng: Rng;
  /** The faults this campaign injects, per kind. */
  private readonly faults: FaultCounts;
  private readonly agents = new Map<string, AgentProcess>();
  /** One proxy per primary site, on its link to the secondary. */
  private readonly proxies = new Map<string, FaultProxy>();
  private readonly copySets: CopySet[];
  private readonly volumeBytes: number;
  private writers!: CampaignWriters;
  private readonly timeline: TimelineEntry[] = [];
  private readonly details: string[] = [];
  private readonly startedAt = Date.now();
  private readonly stats: CampaignStats;
  private writersStoppedAt = 0;
  /** Faults and frozen-link checks running now, and when the last one ended (see `disturbing`). */
  private disturbances = 0;
  private calmSince = Date.now();

  constructor(private readonly options: CampaignOptions) {
    this.topology = TOPOLOGIES[options.mode];
    this.rng = new Rng(options.seed);
    this.faults = options.faults ?? faultMix(options.linkFaults ?? 0, options.kills ?? 0, this.rng.fork());
    this.volumeBytes = (options.volumeMiB ?? 64) * MiB;
    this.copySets = this.topology.copySets.map((spec, index) => ({
      ...spec,
      ledger: new VolumeLedger(index + 1, spec.h1, this.volumeBytes / BLOCK),
      inSession: false,
    }));
    this.stats = {
      mode: options.mode,
      seed: options.seed,
      durationMs: 0,
      faults: { 'link-reset': 0, 'stall-drop': 0, 'stall-hold': 0, 'kill-h1': 0, 'kill-h2': 0, 'kill-h1-cut': 0 },
      proxy: { resets: 0, socketsReset: 0, connections: 0, bytesDropped: 0, bytesHeld: 0, staleBytesDelivered: 0, staleConnections: 0, sendersAbandoned: 0 },
      linkResetsHit: 0,
      stuckSuspensions: 0,
      restarts: {},
      writes: { issued: 0, acked: 0, ackedFua: 0, unknown: 0, errors: 0, reconnects: 0 },
      ackedWritesChecked: 0,
      blocksChecked: 0,
      ackViolations: 0,
      coverageChecks: 0,
      differingAtChecks: 0,
      uncoveredTracks: 0,
      tracksCompared: 0,
      tracksDiffering: 0,
      verifyDifferingTracks: null,
      qemuImgIdentical: null,
      failures: [],
      diagnostics: '',
    };
  }

  async run(): Promise<CampaignStats> {
    this.note(`mode ${this.options.mode}, seed ${this.options.seed}, faults ${JSON.stringify(this.faults)}`);
    let failed = false;
    try {
      await this.setUp();
      const stopWatching = this.watchSuspensions();
      try {
        await this.campaign();
        await this.drain();
      } finally {
        await stopWatching();
      }
      await this.finalChecks();
    } catch (error) {
      this.fail(`campaign aborted: ${(error as Error).stack ?? String(error)}`);
    } finally {
      failed = this.stats.failures.length > 0;
      if (failed) await this.gatherDiagnostics().catch((error) => this.details.push(`diagnostics incomplete: ${String(error)}`));
      await this.tearDown(failed);
    }
    this.stats.durationMs = Date.now() - this.startedAt;
    this.stats.diagnostics = failed ? this.details.join('\n') : '';
    return this.stats;
  }

  // ---- set-up ---------------------------------------------------------

  private async setUp(): Promise<void> {
    const sites = [...this.topology.primaries, this.topology.secondary];
    const env = {
      TANDEM_ASYNC_INTERVAL_MS: '100',
      // Idle activity-log regions leave soon: after a kill, few tracks beyond the written ones come back marked.
      TANDEM_ACTIVITY_IDLE_MS: '1000',
    };
    const started = await startPairedAgents(sites.map((site): StartAgentOptions => ({ site, trackSize: '64K', env })));
    sites.forEach((site, index) => this.agents.set(site, started[index]));
    for (const site of sites) this.stats.restarts[site] = 0;

    // Every primary's link to the secondary goes through its own proxy.
    const secondary = this.agent(this.topology.secondary);
    const [host, port] = secondary.runInfo.linkAddress!.split(':');
    for (const primary of this.topology.primaries) {
      const proxy = await FaultProxy.start({ host, port: Number(port) });
      this.proxies.set(primary, proxy);
      await this.api(this.agent(primary), 'PATCH', `/v1/peers/${this.topology.secondary}`, { linkAddress: proxy.address });
    }

    for (const copySet of this.copySets) {
      await this.api(this.agent(copySet.primary), 'POST', '/v1/volumes', { name: copySet.h1, sizeBytes: this.volumeBytes });
      await this.api(secondary, 'POST', '/v1/volumes', { name: copySet.h2, sizeBytes: this.volumeBytes });
    }
    const controlAgent = this.controlAgent;
    await this.api(controlAgent, 'POST', '/v1/sessions', {
      name: SESSION,
      type: this.topology.type,
      peer: this.topology.secondary,
      ...(this.topology.type === 'snapshot-shipping' ? { shipIntervalSeconds: this.options.shipIntervalSeconds ?? 1 } : {}),
    });
    for (const copySet of this.copySets.filter((c) => !c.joinsLater)) await this.addCopySet(copySet);
    await this.api(controlAgent, 'POST', `/v1/sessions/${SESSION}/actions/start`, {});
    await this.until('the session is prepared after its start', async () => (await this.show()).state === 'prepared', 120_000);
    this.note('session prepared');

    this.writers = new CampaignWriters(
      this.copySets.map((copySet) => ({
        agent: copySet.primary,
        ledger: copySet.ledger,
        address: () => {
          const agent = this.agent(copySet.primary);
          return { host: agent.nbdHost, port: agent.nbdPort };
        },
      })),
      this.rng.fork(),
      { connections: this.options.connections ?? 2, queueDepth: this.options.queueDepth ?? 8, log: (line) => this.note(line) },
    );
  }

  private async addCopySet(copySet: CopySet): Promise<void> {
    const body: Record<string, string> = { h1Volume: copySet.h1, h2Volume: copySet.h2 };
    if (copySet.primary !== this.topology.primaries[0]) body.primaryAgent = copySet.primary;
    await this.api(this.controlAgent, 'POST', `/v1/sessions/${SESSION}/pairs`, body);
    copySet.inSession = true;
  }

  /** Adds a joining copy set to the running session, retrying while faults make the request fail (it may have gone through). */
  private async join(copySet: CopySet): Promise<void> {
    const deadline = Date.now() + 180_000;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.addCopySet(copySet);
        this.note(`copy set ${copySet.h1} -> ${copySet.h2} added to the running session (attempt ${attempt})`);
        return;
      } catch (error) {
        const present = await this.show()
          .then((info) => info.pairs.some((pair) => pair.h1Volume === copySet.h1))
          .catch(() => false);
        if (present) {
          copySet.inSession = true;
          this.note(`copy set ${copySet.h1} -> ${copySet.h2} is in the session (attempt ${attempt} answered ${(error as Error).message})`);
          return;
        }
        if (Date.now() > deadline) throw new Error(`copy set ${copySet.h1} could not be added: ${(error as Error).message}`);
        await sleep(500);
      }
    }
  }

  // ---- the campaign ---------------------------------------------------

  private async campaign(): Promise<void> {
    const schedule = this.rng.shuffle(faultKinds.flatMap((kind) => Array.from({ length: this.faults[kind] }, () => kind)));
    const gap = this.options.gapMs ?? [500, 2500];
    const checkEvery = this.options.checkEvery ?? 0;
    const checkAfter = this.options.checkAfter ?? ['stall-hold'];
    const joining = this.copySets.find((c) => c.joinsLater);
    const joinAt = joining ? Math.floor(schedule.length / 3) : -1;
    let joined: Promise<void> | null = null;
    this.writers.start();
    for (const [index, kind] of schedule.entries()) {
      await sleep(this.rng.int(gap[0], gap[1]));
      if (index === joinAt && joining) joined = this.join(joining);
      await this.disturbing(() => this.inject(kind, index + 1, schedule.length));
      const last = index + 1 === schedule.length;
      const due = (checkEvery > 0 && (index + 1) % checkEvery === 0) || checkAfter.includes(kind);
      if (due && !last) await this.disturbing(() => this.coverageCheck(`after fault ${index + 1} (${kind})`, true));
    }
    await sleep(this.rng.int(gap[0], gap[1]));
    if (joining) await (joined ?? this.join(joining));
    await this.coverageCheck('after the last fault', false);
  }

  private async inject(kind: FaultKind, number: number, total: number): Promise<void> {
    const label = `fault ${number}/${total}`;
    switch (kind) {
      case 'link-reset': {
        const proxies = this.pickProxies();
        const open = proxies.reduce((sum, proxy) => sum + proxy.openConnections, 0);
        this.note(`${label}: link reset (${this.proxyNames(proxies)}, ${open} connection(s))`);
        for (const proxy of proxies) proxy.resetAll();
        if (open > 0) this.stats.linkResetsHit++;
        break;
      }
      case 'stall-drop':
      case 'stall-hold': {
        const mode: StallMode = kind === 'stall-drop' ? 'drop' : 'hold';
        const proxies = this.pickProxies();
        const [min, max] = this.options.stallMs ?? [1000, 8000];
        const duration = this.rng.int(min, max);
        const abandonAt = mode === 'hold' && this.rng.chance(this.options.abandonSenders ?? 0.5) ? this.rng.int(0, Math.floor(duration / 2)) : null;
        const [staleMin, staleMax] = this.options.staleDelayMs ?? [200, 1000];
        const staleDelayMs = this.rng.int(staleMin, staleMax);
        this.note(
          `${label}: ${mode === 'drop' ? 'dropping' : 'holding'} stall of ${duration} ms (${this.proxyNames(proxies)})` +
            (abandonAt !== null ? `, senders reset after ${abandonAt} ms, their bytes delivered ${staleDelayMs} ms after the end` : ''),
        );
        for (const proxy of proxies) proxy.stall(mode);
        if (abandonAt !== null) {
          await sleep(abandonAt);
          // A stall that began while the link was down (an agent just killed and restarting, a redial backing off)
          // holds on until a connection comes that it can abandon, up to 15 s more: the fault happens, not a no-op.
          const waitUntil = Date.now() + 15_000;
          while (proxies.reduce((sum, proxy) => sum + proxy.abandonSenders(), 0) === 0 && Date.now() < waitUntil) await sleep(100);
          await sleep(duration - abandonAt);
        } else {
          await sleep(duration);
        }
        const before = this.sumProxies((proxy) => proxy.stats.staleBytesDelivered);
        await Promise.all(proxies.map((proxy) => proxy.endStall({ staleDelayMs })));
        const stale = this.sumProxies((proxy) => proxy.stats.staleBytesDelivered) - before;
        this.note(`${label}: stall ended${stale > 0 ? `, ${stale} stale byte(s) delivered late` : ''}`);
        break;
      }
      case 'kill-h1': {
        const site = this.rng.pick(this.topology.primaries);
        await this.killAndRestart(site, label);
        break;
      }
      case 'kill-h2':
        await this.killAndRestart(this.topology.secondary, label);
        break;
      case 'kill-h1-cut': {
        const site = this.rng.pick(this.topology.primaries);
        const proxies = [...this.proxies.values()];
        this.note(`${label}: every link cut (reset, then dropping) until ${site} suspends, then kill -9 ${site} while cut`);
        for (const proxy of proxies) {
          proxy.stall('drop');
          proxy.resetAll();
        }
        await this.untilSuspendedAt(site);
        await this.killAndRestart(site, label);
        // Host writes to the restarted agent while its session cannot mirror: they must be marked.
        await sleep(this.rng.int(...(this.options.gapMs ?? [500, 2000])));
        await Promise.all(proxies.map((proxy) => proxy.endStall({ staleDelayMs: 0 })));
        this.note(`${label}: links healed`);
        break;
      }
    }
    this.stats.faults[kind]++;
  }

  private async killAndRestart(site: string, label: string): Promise<void> {
    const agent = this.agent(site);
    const role = site === this.topology.secondary ? 'H2' : 'H1';
    this.note(`${label}: kill -9 ${site} (${role}, pid ${agent.pid})`);
    await agent.kill('SIGKILL');
    if (role === 'H1') {
      // Every answer the dead agent sent has been read: acknowledgements from now on are the new process's.
      await this.writers.disconnectedFrom(site);
      for (const copySet of this.copySets) if (copySet.primary === site) copySet.ledger.killed();
    }
    await this.restart(agent);
    this.stats.restarts[site]++;
    this.note(`${label}: ${site} ready again (pid ${agent.pid})`);
  }

  /** Restarts on the same ports (a port still held for a moment is retried). */
  private async restart(agent: AgentProcess): Promise<void> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        await agent.restart({ samePorts: true });
        return;
      } catch (error) {
        if (Date.now() > deadline || !/EADDRINUSE/.test(String(error))) throw error;
        await sleep(200);
      }
    }
  }

  private pickProxies(): FaultProxy[] {
    const all = [...this.proxies.values()];
    if (all.length === 1) return all;
    // One link or every link, alike.
    const choice = this.rng.int(0, all.length);
    return choice === all.length ? all : [all[choice]];
  }

  private proxyNames(proxies: FaultProxy[]): string {
    return [...this.proxies.entries()]
      .filter(([, proxy]) => proxies.includes(proxy))
      .map(([site]) => `${site} -> ${this.topology.secondary}`)
      .join(', ');
  }

  private sumProxies(value: (proxy: FaultProxy) => number): number {
    return [...this.proxies.values()].reduce((sum, proxy) => sum + value(proxy), 0);
  }

  // ---- checks -----------------------------------------------------------

  /** Runs a fault or a coverage check (links frozen): until it ends and for STUCK_SUSPENDED_MS after, no suspension counts as stuck. */
  private async disturbing<T>(work: () => Promise<T>): Promise<T> {
    this.disturbances++;
    try {
      return await work();
    } finally {
      this.disturbances--;
      this.calmSince = Date.now();
    }
  }

  /**
   * Watches the session from the first fault to the end of the drain: one
   * that stays suspended with no transition for STUCK_SUSPENDED_MS while
   * nothing disturbs it (no fault or frozen-link check running or just over:
   * links healed, agents up) did not resume by itself (a link comes back
   * within seconds: a TLS handshake times out after 5 s, redial backoff is
   * at most 5 s). That is a failure; the session is then resumed by hand so
   * the campaign goes on exercising mirroring.
   */
  private watchSuspensions(): () => Promise<void> {
    let stopped = false;
    // Typed through a cast: the loop below assigns it, which TypeScript's narrowing of `= null` does not follow.
    let seen = null as { key: string; since: number } | null;
    const loop = (async () => {
      while (!stopped) {
        try {
          const info = await this.show();
          const key = `${info.state}|${info.updatedAt}`;
          if (info.state !== 'suspended') seen = null;
          else if (seen?.key !== key) seen = { key, since: Date.now() };
          else if (this.disturbances === 0 && Date.now() - Math.max(seen.since, this.calmSince) > STUCK_SUSPENDED_MS) {
            this.stats.stuckSuspensions++;
            this.fail(
              `the session stayed suspended with no transition for ${Math.round((Date.now() - seen.since) / 1000)} s since ${info.updatedAt}, ` +
                `${Math.round((Date.now() - this.calmSince) / 1000)} s of them with every link healed and every agent up (detail: ${info.detail}): ` +
                'it did not resume by itself; resuming it by hand to go on',
            );
            seen = null;
            await this.api(this.controlAgent, 'POST', `/v1/sessions/${SESSION}/actions/resume`, {}).catch((error) => this.note(`resume by hand failed: ${String(error)}`));
          }
        } catch {
          // The control agent is being restarted: keep what was seen.
        }
        await sleep(1000);
      }
    })();
    return async () => {
      stopped = true;
      await loop;
    };
  }

  /**
   * Check a): writers stopped, every link frozen (reset, then everything
   * swallowed), both sites read whole, the source bitmaps read; every
   * differing track must be marked. Also check c) on the primaries' images.
   */
  private async coverageCheck(label: string, resume: boolean): Promise<void> {
    await this.writers.stop();
    this.writersStoppedAt = Date.now();
    for (const proxy of this.proxies.values()) {
      proxy.blackhole(true);
      proxy.resetAll();
    }
    try {
      const copySets = this.copySets.filter((c) => c.inSession);
      let differing = 0;
      let uncovered = 0;
      const seen: string[] = [];
      for (const copySet of copySets) {
        const h1 = await this.readVolume(copySet.primary, copySet.h1);
        let h2 = await this.readVolume(this.topology.secondary, copySet.h2);
        const bitmap = await this.api<PairBitmap>(this.agent(copySet.primary), 'GET', `/v1/sessions/${SESSION}/pairs/${copySet.h1}/bitmap`);
        const marked = markedSet(bitmap);
        let diff = differingTracks(h1, h2);
        if (diff.some((track) => !marked.has(track))) {
          // H2 may still be applying what it acknowledged (semi-sync arrival, a staged group): judge its image once it is still.
          h2 = await this.settledVolume(this.topology.secondary, copySet.h2, h2);
          diff = differingTracks(h1, h2);
        }
        const missed = diff.filter((track) => !marked.has(track));
        differing += diff.length;
        uncovered += missed.length;
        if (diff.length > 0) seen.push(`${copySet.h1}: ${bitmap.markedTracks} marked, differing ${listTracks(diff, 12)}`);
        this.checkLedger(copySet, h1, label);
        if (!bitmap.kept && diff.length > 0) this.fail(`${label}: ${copySet.h1} keeps no out-of-sync bitmap while ${diff.length} track(s) differ`);
        if (missed.length > 0) {
          this.fail(`${label}: ${missed.length} track(s) of ${copySet.h1} differ from ${copySet.h2} and are not marked out-of-sync (of ${diff.length} differing, ${bitmap.markedTracks} marked): ${listTracks(missed)}`);
          this.describeTracks(`${label}, uncovered`, copySet, h1, h2, missed);
        }
      }
      this.stats.coverageChecks++;
      this.stats.differingAtChecks += differing;
      this.stats.uncoveredTracks += uncovered;
      this.note(`coverage check ${label}: ${differing} track(s) differ, ${uncovered} not marked${seen.length ? ` (${seen.join('; ')})` : ''}`);
    } finally {
      for (const proxy of this.proxies.values()) proxy.blackhole(false);
    }
    if (resume) this.writers.start();
  }

  /** Check c) on one primary image; violations are failures. */
  private checkLedger(copySet: CopySet, image: Buffer, label: string): { blocksChecked: number; ackedWrites: number } {
    const result = copySet.ledger.check(image);
    if (result.violationCount > 0) {
      this.stats.ackViolations += result.violationCount;
      this.fail(`${label}: ${result.violationCount} block(s) of ${copySet.h1} at ${copySet.primary} do not hold an acceptable write:\n    ${result.violations.join('\n    ')}`);
    }
    return result;
  }

  /** Check b) and the end of c). */
  private async finalChecks(): Promise<void> {
    const deadline = Date.now() + 10_000;
    let images: Array<{ copySet: CopySet; h1: Buffer; h2: Buffer; diff: number[] }>;
    for (;;) {
      images = [];
      for (const copySet of this.copySets) {
        const [h1, h2] = await Promise.all([this.readVolume(copySet.primary, copySet.h1), this.readVolume(this.topology.secondary, copySet.h2)]);
        images.push({ copySet, h1, h2, diff: differingTracks(h1, h2) });
      }
      const total = images.reduce((sum, image) => sum + image.diff.length, 0);
      if (total === 0 || Date.now() > deadline) break;
      this.note(`after the drain ${total} track(s) differ; reading again until they stay`);
      await sleep(1000);
    }
    this.stats.tracksCompared = images.reduce((sum, image) => sum + image.h1.length / TRACK, 0);
    this.stats.tracksDiffering = images.reduce((sum, image) => sum + image.diff.length, 0);
    for (const { copySet, h1, h2, diff } of images) {
      const checked = this.checkLedger(copySet, h1, 'after the drain');
      this.stats.blocksChecked += checked.blocksChecked;
      this.stats.ackedWritesChecked += checked.ackedWrites;
      if (diff.length > 0) {
        this.fail(`after the drain (session prepared, nothing out of sync): ${diff.length} track(s) of ${copySet.h1} differ from ${copySet.h2}: ${listTracks(diff)}`);
        this.describeTracks('after the drain', copySet, h1, h2, diff);
      }
    }
    this.note(`after the drain: ${this.stats.tracksDiffering} of ${this.stats.tracksCompared} track(s) differ`);

    // qemu-img first: a verify that finds differences copies them.
    let identical = true;
    for (const copySet of this.copySets) {
      const primary = this.agent(copySet.primary);
      const compare = await runCommand('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', primary.nbdUri(copySet.h1), this.agent(this.topology.secondary).nbdUri(copySet.h2)]);
      if (!/Images are identical/.test(compare.out)) {
        identical = false;
        this.fail(`qemu-img compare ${copySet.h1} ${copySet.h2}: ${compare.out.trim().slice(0, 500)}`);
      }
    }
    this.stats.qemuImgIdentical = identical;
    if (this.topology.type !== 'snapshot-shipping') {
      const report = await agentCliJson<VerifyReport>(this.controlAgent, ['session', 'verify', SESSION]);
      this.stats.verifyDifferingTracks = report.differingTracks;
      if (report.differingTracks > 0) this.fail(`session verify found ${report.differingTracks} differing track(s): ${JSON.stringify(report.pairs)}`);
      this.note(`session verify: ${report.differingTracks} of ${report.comparedTracks} track(s) differ, ${report.unverifiedTracks} unverified`);
    }
  }

  /** Links healed; waits until the session is Prepared by itself with nothing left to send (shipping: one cycle after the writers stopped). */
  private async drain(): Promise<void> {
    for (const proxy of this.proxies.values()) {
      proxy.blackhole(false);
      if (proxy.stalling) await proxy.endStall();
    }
    const timeout = this.options.drainTimeoutMs ?? 180_000;
    const began = Date.now();
    if (this.topology.type === 'snapshot-shipping') {
      await this.until('the session is prepared again', async () => (await this.show()).state === 'prepared', timeout);
      const report = await this.retry('ship-now', () => this.api<ShipCycleReport>(this.controlAgent, 'POST', `/v1/sessions/${SESSION}/ship-now`), timeout);
      this.note(`ship-now: cycle ${report.cycle}, ${report.tracks} track(s)`);
    }
    const timeBound = this.topology.type === 'async' || this.topology.type === 'snapshot-shipping';
    let last = '';
    await this.until(
      'the session drains (prepared, every copy set duplex and nothing marked)',
      async () => {
        const info = await this.show();
        last = JSON.stringify({ state: info.state, detail: info.detail, consistencyTime: info.consistencyTime, pairs: info.pairs.map((p) => [p.h1Volume, p.state, p.outOfSyncTracks]) });
        if (info.state !== 'prepared') return false;
        if (info.pairs.length !== this.copySets.length) return false;
        if (!info.pairs.every((pair) => pair.state === 'duplex' && pair.outOfSyncTracks === 0)) return false;
        if (timeBound && (!info.consistencyTime || Date.parse(info.consistencyTime) < this.writersStoppedAt)) return false;
        for (const copySet of this.copySets) {
          const bitmap = await this.api<PairBitmap>(this.agent(copySet.primary), 'GET', `/v1/sessions/${SESSION}/pairs/${copySet.h1}/bitmap`);
          if (bitmap.markedTracks > 0) {
            last += ` ${copySet.h1}: ${bitmap.markedTracks} marked`;
            return false;
          }
        }
        return true;
      },
      timeout,
      () => last,
    );
    this.note(`drained in ${Date.now() - began} ms: ${last}`);
  }

  /** For every listed track (at most 8), the first differing blocks and what each site and the ledger say about them. */
  private describeTracks(label: string, copySet: CopySet, h1: Buffer, h2: Buffer, tracks: number[]): void {
    const lines = [`${label}: ${copySet.h1} (at ${copySet.primary}) vs ${copySet.h2} (at ${this.topology.secondary})`];
    for (const track of tracks.slice(0, 8)) {
      const blocks: string[] = [];
      for (let block = (track * TRACK) / BLOCK; block < ((track + 1) * TRACK) / BLOCK && blocks.length < 3; block++) {
        const one = h1.subarray(block * BLOCK, (block + 1) * BLOCK);
        const two = h2.subarray(block * BLOCK, (block + 1) * BLOCK);
        if (one.equals(two)) continue;
        blocks.push(`block ${block}: H1 ${describeBlock(one)}, H2 ${describeBlock(two)}; ${copySet.ledger.describe(block)}`);
      }
      lines.push(`  track ${track}: ${blocks.join(' | ')}`);
    }
    this.details.push(lines.join('\n'));
  }

  /** The fault timeline merged with every agent's session, pair, link and peer events; the agents' data dirs. */
  private async gatherDiagnostics(): Promise<void> {
    const entries: Array<{ at: number; text: string }> = this.timeline.map((entry) => ({ at: entry.at, text: `[campaign] ${entry.text}` }));
    for (const [site, agent] of this.agents) {
      let events: AgentEvent[] = [];
      try {
        events = await agent.api.events(0, 1000, { type: 'session.*,pair.*,link.*,peer.*', newest: true });
      } catch (error) {
        entries.push({ at: Date.now(), text: `[${site}] events unavailable: ${String(error)}` });
      }
      for (const event of events) {
        entries.push({ at: Date.parse(event.time), text: `[${site}] ${event.type} ${event.severity}: ${event.message}${event.data ? ` ${JSON.stringify(event.data).slice(0, 300)}` : ''}` });
      }
    }
    entries.sort((a, b) => a.at - b.at);
    this.details.push(
      'timeline (campaign steps and agent events):\n' + entries.map((entry) => `  ${new Date(entry.at).toISOString()} ${entry.text}`).join('\n'),
      'data dirs: ' + [...this.agents].map(([site, agent]) => `${site} ${agent.dataDir}`).join(', '),
    );
  }

  private async tearDown(failed: boolean): Promise<void> {
    if (this.writers?.active) await this.writers.stop().catch(() => {});
    Object.assign(this.stats.writes, this.writers?.stats ?? {});
    for (const proxy of this.proxies.values()) {
      const s = proxy.stats;
      const sum = this.stats.proxy;
      sum.resets += s.resets;
      sum.socketsReset += s.socketsReset;
      sum.connections += s.connections;
      sum.bytesDropped += s.bytesDropped;
      sum.bytesHeld += s.bytesHeld;
      sum.staleBytesDelivered += s.staleBytesDelivered;
      sum.staleConnections += s.staleConnections;
      sum.sendersAbandoned += s.sendersAbandoned;
      await proxy.close();
    }
    const keep = failed && (this.options.keepDataOnFailure ?? false);
    await Promise.all(
      [...this.agents].map(async ([site, agent]) => {
        try {
          await agent.stop({ keepDataDir: keep });
        } catch (error) {
          this.details.push(`${site} did not stop cleanly: ${String(error).slice(0, 2000)}`);
        }
      }),
    );
  }

  // ---- plumbing ---------------------------------------------------------

  private get controlAgent(): AgentProcess {
    return this.agent(this.topology.primaries[0]);
  }

  private agent(site: string): AgentProcess {
    const agent = this.agents.get(site);
    if (!agent) throw new Error(`no agent ${site}`);
    return agent;
  }

  /** Waits (60 s at most) until the session is suspended at a primary agent (its writes only mark from then on). */
  private async untilSuspendedAt(site: string): Promise<void> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const info = await this.api<SessionInfo>(this.agent(site), 'GET', `/v1/sessions/${SESSION}`).catch(() => null);
      if (info?.state === 'suspended') return;
      if (Date.now() > deadline) throw new Error(`the session never suspended at ${site} with its links cut (${info?.state ?? 'no answer'})`);
      await sleep(100);
    }
  }

  private show(): Promise<SessionInfo> {
    return this.api<SessionInfo>(this.controlAgent, 'GET', `/v1/sessions/${SESSION}`);
  }

  private async api<T = unknown>(agent: AgentProcess, method: string, path: string, body?: unknown): Promise<T> {
    const response = await agent.api.request(method, path, body);
    if (response.status >= 400) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(response.body)}`);
    return response.body as T;
  }

  /** Reads a volume again until two reads in a row are equal (it stopped changing), at most 10 s. */
  private async settledVolume(site: string, volume: string, first: Buffer): Promise<Buffer> {
    const deadline = Date.now() + 10_000;
    let previous = first;
    for (;;) {
      await sleep(500);
      const next = await this.readVolume(site, volume);
      if (next.equals(previous) || Date.now() > deadline) {
        if (!next.equals(first)) this.note(`${volume} at ${site} was still changing during the check (${differingTracks(first, next).length} track(s)); judged once still`);
        return next;
      }
      previous = next;
    }
  }

  private async readVolume(site: string, volume: string): Promise<Buffer> {
    const agent = this.agent(site);
    const pipe = await NbdPipe.connect(agent.nbdHost, agent.nbdPort, volume);
    try {
      return await pipe.readRange(0, this.volumeBytes, { chunk: 1024 * 1024, depth: 4 });
    } finally {
      await pipe.close().catch(() => pipe.destroy());
    }
  }

  /** Polls `probe` (errors count as not yet: an agent may be restarting) until it holds or the deadline passes. */
  private async until(what: string, probe: () => Promise<boolean>, timeoutMs: number, last: () => string = () => ''): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let error: unknown = null;
    for (;;) {
      try {
        if (await probe()) return;
        error = null;
      } catch (caught) {
        error = caught;
      }
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}: ${last()}${error ? ` (${String(error)})` : ''}`);
      await sleep(250);
    }
  }

  private async retry<T>(what: string, attempt: () => Promise<T>, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        return await attempt();
      } catch (error) {
        if (Date.now() > deadline) throw new Error(`${what} kept failing for ${timeoutMs} ms: ${String(error)}`);
        await sleep(500);
      }
    }
  }

  private note(text: string): void {
    this.timeline.push({ at: Date.now(), text });
    this.options.log?.(`[${this.options.mode} +${((Date.now() - this.startedAt) / 1000).toFixed(1)}s] ${text}`);
  }

  private fail(text: string): void {
    this.stats.failures.push(text);
    this.note(`FAILURE ${text.split('\n')[0]}`);
  }
}

/** Tracks (64 KiB) whose bytes differ between two images of one size. */
function differingTracks(one: Buffer, two: Buffer): number[] {
  const tracks: number[] = [];
  for (let offset = 0; offset < one.length; offset += TRACK) {
    if (!one.subarray(offset, offset + TRACK).equals(two.subarray(offset, offset + TRACK))) tracks.push(offset / TRACK);
  }
  return tracks;
}

function markedSet(bitmap: PairBitmap): Set<number> {
  const marked = new Set<number>();
  for (const [first, count] of bitmap.runs) for (let track = first; track < first + count; track++) marked.add(track);
  return marked;
}

function listTracks(tracks: number[], most = 40): string {
  return tracks.slice(0, most).join(', ') + (tracks.length > most ? `, … (${tracks.length - most} more)` : '');
}

function describeBlock(data: Buffer): string {
  return describeParsed(parseBlock(data));
}
