import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AgentEvent } from '@tandem/contract';
import { StorageEngine } from './engine.ts';
import { initDataDir } from './init.ts';

let root = '';
afterEach(async () => {
  if (root) await fs.rm(root, { recursive: true, force: true });
});

describe('volume usage events', () => {
  it('reports space changed by host writes once per interval, not once per write', async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'tandem-usage-'));
    await initDataDir(root, { site: 'usage', trackSize: 65536 });
    const engine = await StorageEngine.open(root);
    const seen: AgentEvent[] = [];
    engine.catalog.events.on('event', (event: AgentEvent) => {
      if (event.type === 'volume.usage') seen.push(event);
    });
    await engine.createVolume('v', 64 * 65536);
    const device = engine.device('v');
    for (let track = 0; track < 10; track++) await device.write(track * 65536, Buffer.alloc(4096, 1));
    // Overwrites in place change no allocation: no event of their own.
    for (let i = 0; i < 10; i++) await device.write(100, Buffer.alloc(100, 2));
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(seen).toHaveLength(1);
    expect(seen[0].subject).toBe('v');
    expect(seen[0].data).toMatchObject({ allocatedBytes: 10 * 65536 });
    await device.trim(0, 64 * 65536);
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(seen).toHaveLength(2);
    expect(seen[1].data).toMatchObject({ allocatedBytes: 0 });
    await engine.close();
  });
});
