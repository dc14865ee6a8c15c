import type { VolumeInfo } from '@tandem/contract';

export interface VolumeRow {
  volume: VolumeInfo;
  /** 0 for a volume, 1 for its snapshot, 2 for a snapshot of a snapshot… */
  depth: number;
}

/**
 * Orders volumes so each snapshot sits under the volume it came from (its
 * lineage), sources alphabetically; snapshots whose source is gone appear at
 * the top level.
 */
export function orderByLineage(volumes: VolumeInfo[]): VolumeRow[] {
  const byName = new Map(volumes.map((volume) => [volume.name, volume]));
  const children = new Map<string, VolumeInfo[]>();
  const roots: VolumeInfo[] = [];
  for (const volume of volumes) {
    if (volume.source && byName.has(volume.source) && volume.source !== volume.name) {
      const list = children.get(volume.source) ?? [];
      list.push(volume);
      children.set(volume.source, list);
    } else {
      roots.push(volume);
    }
  }
  const rows: VolumeRow[] = [];
  const seen = new Set<string>();
  const visit = (volume: VolumeInfo, depth: number) => {
    if (seen.has(volume.name)) return;
    seen.add(volume.name);
    rows.push({ volume, depth });
    for (const child of sorted(children.get(volume.name) ?? [])) visit(child, depth + 1);
  };
  for (const root of sorted(roots)) visit(root, 0);
  return rows;
}

function sorted(volumes: VolumeInfo[]): VolumeInfo[] {
  return [...volumes].sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.name.localeCompare(b.name));
}
