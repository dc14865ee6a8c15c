import path from 'node:path';

/**
 * The layout of an agent's data dir. One place names every file so the
 * daemon, the offline checker and the admin CLI agree.
 *
 *   agent.json         identity: site name, agent id, track size, format
 *   catalog.db         SQLite catalog: volumes, events, paired clients, tokens
 *   pool/extent-N.dat  extent files holding track data
 *   meta/checkpoint    binary metadata checkpoint (VTTs, refcounts)
 *   meta/wal-N.log     metadata write-ahead log segments
 *   meta/activity-log  regions of out-of-sync bitmaps with writes in progress (storage/activity-log.ts)
 *   tls/               CA, API server certificate, local admin client certificate
 *   mds/NAME.log       master data set of cluster NAME (clusters/mds-store.ts)
 *   run.json           written by a running agent: pid and listening addresses
 */
export interface DataDirPaths {
  root: string;
  identity: string;
  catalog: string;
  pool: string;
  meta: string;
  tls: string;
  runInfo: string;
  lock: string;
}

export function dataDirPaths(root: string): DataDirPaths {
  const abs = path.resolve(root);
  return {
    root: abs,
    identity: path.join(abs, 'agent.json'),
    catalog: path.join(abs, 'catalog.db'),
    pool: path.join(abs, 'pool'),
    meta: path.join(abs, 'meta'),
    tls: path.join(abs, 'tls'),
    runInfo: path.join(abs, 'run.json'),
    lock: path.join(abs, 'agent.lock'),
  };
}

/** Contents of agent.json. */
export interface AgentIdentity {
  formatVersion: 1;
  site: string;
  agentId: string;
  trackSize: number;
  createdAt: string;
}

/** Contents of run.json, written by `tandem-agent run` and removed at clean exit. */
export interface RunInfo {
  pid: number;
  apiAddress: string;
  nbdAddress: string | null;
  nbdSocket: string | null;
  /** The peer link listener (host:port). */
  linkAddress: string | null;
  /** The Prometheus metrics listener (host:port, `GET /metrics`); null or absent without `--metrics`. */
  metricsAddress?: string | null;
  startedAt: string;
}
