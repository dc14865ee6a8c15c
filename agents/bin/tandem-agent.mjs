#!/usr/bin/env node
// Entry point of the agent daemon and its CLI. The agent is TypeScript run
// through tsx's loader, so the sources are what runs (no stale build).
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
