import { ProblemError } from '@tandem/contract';

/**
 * The peer requests that carry a mirroring stream's data to a target
 * (`pair.write`, `pair.trim`, `pair.flush`, `cg.stage`,
 * `ship.*`) are flagged `stream` in the peer protocol's method table
 * (contract/src/peer.ts; STREAM_METHODS in link/peer-protocol.ts): every one
 * names the run it belongs to (`run`), and a target serves it only if that
 * is the run the sending agent fenced last for the session.
 */
export { STREAM_METHODS } from './link/peer-protocol.ts';

/**
 * Runs of mirroring streams at a target (PROTOCOL.md, "No write left behind").
 *
 * A source starts a new run each time it starts mirroring a session (start,
 * resume after a suspend, restart of either agent): it sends `stream.fence`
 * with a fresh run id before anything of the run, and tags every stream
 * request with it. The fence makes the target refuse every request of an
 * earlier run from then on (`stale-stream`), waits for the ones already being
 * served, and drops what the earlier run left staged. So a request of a run
 * the source gave up on (cut with the link, stalled in the network and
 * delivered late, answered too slowly) can never land after the resync of
 * the next run copied its tracks: an older write never overwrites a newer
 * copy the source counts as in sync.
 *
 * Runs live in memory only: a target that restarted knows none, so it
 * refuses every stream request until the source fences again; the source
 * then suspends and resyncs, and whatever the target acknowledged but lost
 * with the restart (a write not yet flushed) is copied again.
 */
export class StreamFences {
  /** `session/peer` -> the run fenced last. */
  private readonly runs = new Map<string, string>();
  /** `session/peer` -> requests being served. */
  private readonly serving = new Map<string, Set<Promise<unknown>>>();

  private static key(session: string, peer: string): string {
    return `${session}/${peer}`;
  }

  /** Serves a stream request of `run` from `peer`, or refuses it with `stale-stream`. */
  admit<T>(session: string, sessionName: string, peer: string, run: unknown, work: () => Promise<T>): Promise<T> {
    const key = StreamFences.key(session, peer);
    const current = this.runs.get(key);
    if (typeof run !== 'string' || run !== current) {
      return Promise.reject(
        new ProblemError(
          'stale-stream',
          current === undefined
            ? `no mirroring run of session ${sessionName} from that agent is open here (this agent restarted, or the run was never fenced); the source must start a new run and resync`
            : `the request belongs to an earlier mirroring run of session ${sessionName}; a newer run was fenced and the source resyncs`,
        ),
      );
    }
    let serving = this.serving.get(key);
    if (!serving) {
      serving = new Set();
      this.serving.set(key, serving);
    }
    const set = serving;
    const promise = work();
    set.add(promise);
    const done = () => {
      set.delete(promise);
      if (set.size === 0 && this.serving.get(key) === set) this.serving.delete(key);
    };
    promise.then(done, done);
    return promise;
  }

  /**
   * Opens run `run` of `peer`'s stream of `session`: earlier runs are refused
   * from now, the requests of them being served are waited for, then `drain`
   * drops or settles what they left (staged parts, an open shipping cycle,
   * writes acknowledged on arrival).
   */
  async fence(session: string, peer: string, run: string, drain: () => Promise<void>): Promise<void> {
    const key = StreamFences.key(session, peer);
    this.runs.set(key, run);
    await Promise.allSettled([...(this.serving.get(key) ?? [])]);
    await drain();
  }

  /** The session is gone here (terminated, or no longer this agent's to receive). */
  forget(session: string): void {
    for (const key of [...this.runs.keys()]) if (key.startsWith(`${session}/`)) this.runs.delete(key);
  }
}
