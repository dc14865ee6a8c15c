/**
 * Faults a test injects into the replication parts it builds: the test makes
 * the object, passes it to `startReplication` (or a part's constructor) and
 * sets a field when it wants the fault. The parts only read it; an agent
 * process gets `faultsFromEnv()` (inert unless a process-level test set its
 * variable), so no production class carries test state of its own.
 */
export interface ReplicationFaults {
  /** Target (semi-sync): this many writes fail here after their arrival was acknowledged (the target repairs them). */
  failArrivalWrites: number;
  /** Target: a `session.stop-source` (the source stops for a recover) waits for this before anything. */
  holdStopSource: Promise<void> | null;
  /** Multi-primary member: `mp.commit` requests wait for this before anything (a commit sent, not arrived yet). */
  holdCommits: Promise<void> | null;
  /** Group applier: this many multi-primary commits stop right after their commit marker is durable, as if the agent died. */
  failAfterCommitMarker: number;
  /** Flash mirror secondary: `flash.mirror` requests of these ops (`perform`, `withdraw`) are dropped as if lost. */
  loseFlashMirror: Set<string>;
}

/** No fault. */
export function inertFaults(): ReplicationFaults {
  return { failArrivalWrites: 0, holdStopSource: null, holdCommits: null, failAfterCommitMarker: 0, loseFlashMirror: new Set() };
}

/** An agent process's faults: inert, but for TANDEM_TEST_FAIL_ARRIVAL_WRITES (process-level tests). */
export function faultsFromEnv(env: NodeJS.ProcessEnv = process.env): ReplicationFaults {
  return { ...inertFaults(), failArrivalWrites: Number(env.TANDEM_TEST_FAIL_ARRIVAL_WRITES ?? 0) || 0 };
}
