/**
 * The Tandem contract: zod schemas and inferred types for every message the
 * agent, the console backend and the renderer exchange. Imports nothing from
 * Node, Electron or the DOM (checked by contract/src/layering.test.ts).
 */
export * from './problems.ts';
export * from './sizes.ts';
export * from './volumes.ts';
export * from './events.ts';
export * from './roles.ts';
export * from './agent.ts';
export * from './replication.ts';
export * from './clusters.ts';
export * from './flash.ts';
export * from './history.ts';
export * from './audit.ts';
export * from './alerts.ts';
export * from './journal.ts';
export * from './peer.ts';
