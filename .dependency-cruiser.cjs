/**
 * Import boundaries (issue 12 item 4), checked in CI by contract/src/import-boundaries.test.ts
 * and by hand with `npm run lint:deps`. Dependencies run one way:
 *   contract <- storage <- write-path <- nbd, flash <- replication <- api, metrics, cli <- agent
 * and storage <- cdp (the replica-side journal, issue 13) <- replication.
 * and the console's renderer reaches the agents only through the contract and its backend.
 * Type-only imports are left out of the general cycle rule (they vanish at runtime), but not in
 * replication/: its parts take the narrow interfaces of replication/hooks.ts, not the service,
 * so nothing there imports back what imports it, types included (no-cycle-in-replication).
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-runtime-cycle',
      severity: 'error',
      comment: 'A module may not import itself back at runtime, directly or around a loop.',
      from: { path: '^(agents/src|contract/src|main/src|renderer/src)/' },
      to: { circular: true, dependencyTypesNot: ['type-only'], viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'no-cycle-in-replication',
      severity: 'error',
      comment: 'Replication has no import cycle, type-only imports included: parts take the hooks they use (hooks.ts), not the service.',
      from: { path: '^agents/src/replication/' },
      to: { circular: true },
    },
    {
      name: 'contract-imports-no-runtime',
      severity: 'error',
      comment: 'The contract is shared by the agent, the backend and the renderer: nothing from Node, Electron, React or our code.',
      from: { path: '^contract/src/', pathNot: '\\.test\\.ts$' },
      to: { pathNot: '^(contract/src/|node_modules/zod/)' },
    },
    {
      name: 'storage-is-the-bottom',
      severity: 'error',
      comment: 'The storage engine knows no data path, flash copy, replication, API or CLI.',
      from: { path: '^agents/src/storage/' },
      to: { path: '^agents/src/(write-path|nbd|flash|replication|api|cli|cdp)/' },
    },
    {
      name: 'cdp-on-storage',
      severity: 'error',
      comment: 'The CDP journal is built on the storage engine alone: replication (targets, group applier, shipping) feeds it, never the other way.',
      from: { path: '^agents/src/cdp/' },
      to: { path: '^agents/src/(write-path|nbd|flash|replication|api|cli|metrics)/' },
    },
    {
      name: 'write-path-below-its-taps',
      severity: 'error',
      comment: 'The splitter runs taps it is given; it imports none of their owners.',
      from: { path: '^agents/src/write-path/' },
      to: { path: '^agents/src/(nbd|flash|replication|api|cli)/' },
    },
    {
      name: 'nbd-without-replication',
      severity: 'error',
      comment: 'NBD serves an export catalog: it runs without flash copy or replication.',
      from: { path: '^agents/src/nbd/' },
      to: { path: '^agents/src/(flash|replication|api|cli)/' },
    },
    {
      name: 'flash-without-replication',
      severity: 'error',
      comment: 'Flash copy works without replication; replication installs its mirror hooks into flash copy.',
      from: { path: '^agents/src/flash/' },
      to: { path: '^agents/src/(replication|api|cli|nbd)/' },
    },
    {
      name: 'replication-below-its-surfaces',
      severity: 'error',
      comment: 'Replication is driven by the API and the CLI, never the other way.',
      from: { path: '^agents/src/replication/' },
      to: { path: '^agents/src/(api|cli|nbd)/' },
    },
    {
      name: 'alerts-read-the-parts',
      severity: 'error',
      comment: 'Alert rules read sessions (SessionReader), the pool and the async backlog through the views handed to them (alerts/evaluator.ts AlertSources); none of those parts imports alerts.',
      from: { path: '^agents/src/(storage|write-path|nbd|flash|replication|metrics)/' },
      to: { path: '^agents/src/alerts/' },
    },
    {
      name: 'metrics-read-the-parts',
      severity: 'error',
      comment: 'Metrics read the engine, NBD, flash copy and replication through the narrow meters and views they offer; none of those parts imports metrics.',
      from: { path: '^agents/src/(storage|cdp|write-path|nbd|flash|replication|api)/' },
      to: { path: '^agents/src/metrics/' },
    },
    {
      name: 'clusters-and-history-read-sessions',
      severity: 'error',
      comment: 'Clusters and the session history read sessions through SessionReader (session-reader.ts), not the replication service, types included: they sit above it in no cycle.',
      from: { path: '^agents/src/replication/(clusters|history)/', pathNot: '\\.test\\.ts$' },
      to: { path: '^agents/src/replication/(service|runtime|mirroring|target|multi-primary[^/]*|session-(actions|failback|reports|verify)|pair-source|running-copy-sets|copy-sets)\\.ts$' },
    },
    {
      name: 'renderer-sandboxed',
      severity: 'error',
      comment: 'The renderer talks to the backend over HTTP/WebSocket: no Node, no backend or agent code (the backend\'s shared API shapes excepted).',
      from: { path: '^renderer/src/', pathNot: '\\.test\\.tsx?$' },
      to: { path: '^(agents|preload)/|^main/src/(?!shared/)', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'renderer-no-node',
      severity: 'error',
      comment: 'The renderer runs sandboxed: no Node built-in module.',
      from: { path: '^renderer/src/', pathNot: '\\.test\\.tsx?$' },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'console-shared-is-plain',
      severity: 'error',
      comment: 'main/src/shared holds the API shapes the renderer and the backend share: only the contract and zod.',
      from: { path: '^main/src/shared/', pathNot: '\\.test\\.ts$' },
      to: { pathNot: '^(main/src/shared/|contract/src/|@tandem/contract$|node_modules/zod/)' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(node_modules|out|dist)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.tsx', '.js', '.mjs', '.cjs', '.json'] },
  },
};
