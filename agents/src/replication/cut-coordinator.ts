import { randomUUID } from 'node:crypto';
import { isProblemError, type MemberStatus } from '@tandem/contract';
import { withTimeout } from '../timeout.ts';

/** What a primary agent reports with every hold: the coordinator's view of it (the peer protocol's `mp.hold` result). */
export type { MemberStatus };

/** One primary agent of a multi-primary session, as the coordinator drives it (over the peer link, or this agent itself). */
export interface CutParticipant {
  agentId: string;
  /** Phase one: hold new host writes for round `round`; also tells the agent what is committed. */
  hold(round: number, epoch: string, committed: number): Promise<MemberStatus>;
  /** Phase two: cut this agent's part of `round` at `time` and release the hold. */
  cut(round: number, time: number): Promise<void>;
  /** Give the round up: release the hold without a cut. */
  release(round: number): Promise<void>;
}

/** One secondary agent of the session: applies every staged part through a round all-or-nothing. */
export interface CutSecondary {
  agentId: string;
  commit(epoch: string, through: number, time: number): Promise<void>;
}

export interface CoordinatorHooks {
  /** A participant or secondary cannot be reached, or refused for another reason than an expired hold: suspend. */
  onFailure(agentId: string, error: Error): void;
  /** Every secondary applied every part through `round` (cut at `time`). */
  onCommitted(round: number, time: number): void;
  /** Fresh statuses of every participant, from a round's holds. */
  onStatus(statuses: Map<string, MemberStatus>): void;
}

const DEFAULT_ROUND_INTERVAL_MS = 100;
/** How long the coordinator waits for one hold, cut or commit answer. */
const CALL_TIMEOUT_MS = 5000;

/**
 * The round coordinator of a multi-primary async session (at its control
 * agent in direction H1->H2, at the secondary site in H2->H1).
 *
 * Every interval it runs one round N, a two-phase cut across all primary
 * agents:
 * 1. hold: every primary agent queues new host writes (they wait before
 *    their local write; none fails) and answers; a hold ends by itself after
 *    a bounded time;
 * 2. when every agent holds, the coordinator reads its clock once: that is the
 *    cut time T(N); then every agent seals its open group as its part of N,
 *    stamped T(N), releases the held writes and ships the part to the
 *    secondary, which stages it durably without applying it.
 * Any write acknowledged to a host before T(N) was queued in its agent's
 * open group before that agent's hold began (queueing precedes the
 * acknowledgement; a held write waits until after the cut), so it is in a
 * part <= N; a write issued after T(N) reached a held agent and waits, so it
 * is in a part > N. The union of the parts <= N is the primaries' image at
 * T(N), across agents: a write acknowledged at agent A before a write was
 * issued at agent B is never in a later round than that write.
 *
 * A round is complete when every agent cut its part. The coordinator commits the
 * highest complete round R whose parts every agent reports staged: every
 * secondary then applies all staged parts through R (of every agent) in one
 * all-or-nothing step. A round an agent did not cut (its hold expired) is not
 * lost: that agent's writes stay in its open group, so its next part covers
 * them, and the incomplete round's other parts are applied with the next
 * committed round. The session's consistency time is T(R) of the last round
 * committed at every secondary.
 */
export class CutCoordinator {
  readonly epoch = randomUUID();
  private round = 0;
  private running = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  /** Complete rounds not committed yet: round -> cut time. */
  private readonly complete = new Map<number, number>();
  readonly statuses = new Map<string, MemberStatus>();
  committed: { round: number; time: number } | null = null;
  /** The first round whose holds found every participant duplex: commits from it on are consistent images. */
  firstConsistentRound: number | null = null;
  rounds = { run: 0, complete: 0, incomplete: 0 };

  constructor(
    private readonly participants: CutParticipant[],
    private readonly secondaries: CutSecondary[],
    private readonly hooks: CoordinatorHooks,
    private readonly intervalMs = DEFAULT_ROUND_INTERVAL_MS,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
  }

  get active(): boolean {
    return this.running;
  }

  /**
   * The secondaries' image is not consistent from now until a round in which
   * every participant reports duplex is committed (a resync of the same run
   * copies tracks a verify found differing).
   */
  restartConsistency(): void {
    this.firstConsistentRound = null;
  }

  /**
   * A participant's open part outgrew one link frame: the next round starts
   * now instead of at the end of the interval (a burst ships while it lasts;
   * a round already running is not hurried).
   */
  soon(): void {
    // Asked during a round: the next one follows it without the interval.
    this.hurry = 'now';
    this.wake?.();
  }

  /**
   * Why the next round starts before the interval ends: `now` (a part
   * outgrew a frame: at once), `paced` (to commit a staged round: at least
   * a quarter of the interval after the last one started).
   */
  private hurry: 'now' | 'paced' | null = null;

  /**
   * A participant in this process staged its part of `round` (of coordinator
   * run `epoch`) at every secondary: when that completes a round, the next
   * round starts now and commits it (instead of an interval later), so an
   * async session's image lags its primary by about one interval. Not for
   * an `empty` part (rounds would follow each other while nothing is
   * written), except before the first consistent round is committed (the
   * session is prepared then).
   */
  staged(agentId: string, epoch: string, round: number, empty: boolean): void {
    if (epoch !== this.epoch || !this.running) return;
    const status = this.statuses.get(agentId);
    if (!status || round <= status.stagedThrough) return;
    this.statuses.set(agentId, { ...status, stagedThrough: round });
    const staged = Math.min(...this.participants.map((participant) => this.statuses.get(participant.agentId)?.stagedThrough ?? 0));
    const committed = this.committed?.round ?? 0;
    const consistent = this.firstConsistentRound !== null && committed >= this.firstConsistentRound;
    if (empty && consistent) return;
    if ([...this.complete.keys()].some((complete) => complete > committed && complete <= staged)) {
      if (this.hurry !== 'now') this.hurry = 'paced';
      this.wake?.();
    }
  }

  /** Changes of the participants, made at the next round boundary (never inside a round). */
  private readonly changes: Array<() => void> = [];

  /** A primary agent joins the rounds from the next one on (its parts start there). */
  addParticipant(participant: CutParticipant): void {
    this.changes.push(() => {
      if (!this.participants.some((p) => p.agentId === participant.agentId)) this.participants.push(participant);
    });
  }

  /** A primary agent leaves the rounds from the next one on. */
  removeParticipant(agentId: string): void {
    this.changes.push(() => {
      const index = this.participants.findIndex((p) => p.agentId === agentId);
      if (index >= 0) this.participants.splice(index, 1);
      this.statuses.delete(agentId);
    });
  }

  /** The primary agents of the rounds now. */
  get participantIds(): string[] {
    return this.participants.map((participant) => participant.agentId);
  }

  /** Waits `ms` (a macrotask at least: the event loop serves host writes and answers between rounds) or until woken. */
  private async pause(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = ms > 0 ? setTimeout(resolve, ms) : setImmediate(resolve);
      this.wake = () => {
        if (ms > 0) clearTimeout(timer as NodeJS.Timeout);
        else clearImmediate(timer as NodeJS.Immediate);
        resolve();
      };
    });
    this.wake = null;
  }

  private async run(): Promise<void> {
    // Rounds started early to commit a staged one still keep this far apart: back-to-back rounds under steady small
    // writes would each pay a hold, a cut, a staging and a commit for a few writes. A burst (`soon`) does not wait.
    const minGapMs = Math.max(1, this.intervalMs / 4);
    while (this.running) {
      const started = Date.now();
      try {
        await this.runRound();
      } catch (error) {
        // runRound reports failures through the hooks; this is a bug guard.
        this.fail('coordinator', error);
      }
      if (!this.running) return;
      if (this.hurry === null) await this.pause(this.intervalMs);
      if (!this.running) return;
      // Woken to commit a staged round (now or during the wait): not before the gap.
      while (this.hurry === 'paced' && this.running && Date.now() < started + minGapMs) await this.pause(started + minGapMs - Date.now());
      this.hurry = null;
      await this.pause(0);
    }
  }

  private fail(agentId: string, error: unknown): void {
    if (!this.running) return;
    this.running = false;
    this.hooks.onFailure(agentId, error instanceof Error ? error : new Error(String(error)));
  }

  /** One round: hold everywhere, read the clock, cut everywhere, commit what every agent has staged. */
  private async runRound(): Promise<void> {
    for (const change of this.changes.splice(0)) change();
    const round = ++this.round;
    this.rounds.run++;
    const committed = this.committed?.round ?? 0;
    const holds = await Promise.allSettled(
      this.participants.map((participant) => answerIn(participant.hold(round, this.epoch, committed), CALL_TIMEOUT_MS, `hold of round ${round}`)),
    );
    const refused = holds.findIndex((outcome) => outcome.status === 'rejected');
    if (refused >= 0) {
      // Give the round up everywhere (the others would release by themselves, later).
      await Promise.allSettled(this.participants.map((participant) => participant.release(round)));
      this.fail(this.participants[refused].agentId, (holds[refused] as PromiseRejectedResult).reason);
      return;
    }
    if (!this.running) {
      await Promise.allSettled(this.participants.map((participant) => participant.release(round)));
      return;
    }
    // Every agent holds: this instant is the cut.
    const time = Date.now();
    for (const [index, outcome] of holds.entries()) {
      this.statuses.set(this.participants[index].agentId, (outcome as PromiseFulfilledResult<MemberStatus>).value);
    }
    if (this.firstConsistentRound === null && [...this.statuses.values()].every((status) => status.duplex)) {
      this.firstConsistentRound = round;
    }
    this.hooks.onStatus(this.statuses);
    const cuts = await Promise.allSettled(
      this.participants.map((participant) => answerIn(participant.cut(round, time), CALL_TIMEOUT_MS, `cut of round ${round}`)),
    );
    let cutEverywhere = true;
    for (const [index, outcome] of cuts.entries()) {
      if (outcome.status === 'fulfilled') continue;
      cutEverywhere = false;
      // An expired hold only makes this round incomplete; anything else stops the session.
      if (!(isProblemError(outcome.reason) && outcome.reason.problem === 'conflict')) {
        this.fail(this.participants[index].agentId, outcome.reason);
        return;
      }
    }
    if (cutEverywhere) {
      this.complete.set(round, time);
      this.rounds.complete++;
    } else this.rounds.incomplete++;
    await this.commitStaged();
  }

  /** Commits the highest complete round that every agent reports staged at the secondaries. */
  private async commitStaged(): Promise<void> {
    const staged = Math.min(...this.participants.map((participant) => this.statuses.get(participant.agentId)?.stagedThrough ?? 0));
    let through = 0;
    for (const round of this.complete.keys()) if (round <= staged && round > through) through = round;
    if (through === 0) return;
    const time = this.complete.get(through)!;
    const outcomes = await Promise.allSettled(
      this.secondaries.map((secondary) => answerIn(secondary.commit(this.epoch, through, time), CALL_TIMEOUT_MS * 6, `commit of round ${through}`)),
    );
    const refused = outcomes.findIndex((outcome) => outcome.status === 'rejected');
    if (refused >= 0) {
      this.fail(this.secondaries[refused].agentId, (outcomes[refused] as PromiseRejectedResult).reason);
      return;
    }
    for (const round of [...this.complete.keys()]) if (round <= through) this.complete.delete(round);
    this.committed = { round: through, time };
    this.hooks.onCommitted(through, time);
  }
}

function answerIn<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  return withTimeout(work, ms, () => new Error(`${what} got no answer in ${ms} ms`));
}
