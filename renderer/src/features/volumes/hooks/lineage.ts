import type { VolumeInfo } from '@tandem/contract';

export interface VolumeRow {
  volume: VolumeInfo;
  /** 0 for a volume, 1 for its snapshot, 2 for a snapshot of a snapshot… */
  depth: number;
}

/** What the volume table sorts by. */
export type VolumeSortKey = 'created' | 'name' | 'size' | 'allocated' | 'shared' | 'snapshots';
export interface VolumeSort {
  by: VolumeSortKey;
  descending: boolean;
}

const sortValue: Record<Exclude<VolumeSortKey, 'created' | 'name'>, (volume: VolumeInfo) => number> = {
  size: (volume) => volume.sizeBytes,
  allocated: (volume) => volume.allocatedBytes,
  shared: (volume) => volume.sharedBytes,
  snapshots: (volume) => volume.snapshots.length,
};

/**
 * Orders volumes so each snapshot sits under the volume it came from (its
 * lineage); snapshots whose source is gone appear at the top level. Volumes
 * of one level are in `sort` order (by default as they were created).
 */
export function orderByLineage(volumes: VolumeInfo[], sort: VolumeSort = { by: 'created', descending: false }): VolumeRow[] {
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
    for (const child of sorted(children.get(volume.name) ?? [], sort)) visit(child, depth + 1);
  };
  for (const root of sorted(roots, sort)) visit(root, 0);
  return rows;
}

function sorted(volumes: VolumeInfo[], sort: VolumeSort): VolumeInfo[] {
  const created = (a: VolumeInfo, b: VolumeInfo) => a.createdAt.localeCompare(b.createdAt) || a.name.localeCompare(b.name);
  const compare =
    sort.by === 'created'
      ? created
      : sort.by === 'name'
        ? (a: VolumeInfo, b: VolumeInfo) => a.name.localeCompare(b.name)
        : (a: VolumeInfo, b: VolumeInfo) => sortValue[sort.by as keyof typeof sortValue](a) - sortValue[sort.by as keyof typeof sortValue](b);
  const sign = sort.descending ? -1 : 1;
  return [...volumes].sort((a, b) => sign * compare(a, b) || created(a, b));
}

/** Which volumes the table shows. */
export interface VolumeFilter {
  /** Part of the name, any case ('' for all). */
  query: string;
  kind: 'all' | 'volume' | 'snapshot';
  /** Only volumes in a copy set of a session or in a flash copy. */
  inUseOnly: boolean;
}

/**
 * The rows that match `filter`, in their order, with the sources of a
 * matching snapshot kept above it (shown, so its lineage still reads).
 */
export function filterRows(rows: VolumeRow[], filter: VolumeFilter, inUse: (name: string) => boolean): VolumeRow[] {
  const query = filter.query.trim().toLowerCase();
  const matches = (volume: VolumeInfo) =>
    (query === '' || volume.name.toLowerCase().includes(query)) &&
    (filter.kind === 'all' || volume.kind === filter.kind) &&
    (!filter.inUseOnly || inUse(volume.name));
  const byName = new Map(rows.map((row) => [row.volume.name, row.volume]));
  const shown = new Set<string>();
  for (const { volume } of rows) {
    if (!matches(volume)) continue;
    shown.add(volume.name);
    for (let source = volume.source; source && byName.has(source) && !shown.has(source); source = byName.get(source)!.source) shown.add(source);
  }
  return rows.filter((row) => shown.has(row.volume.name));
}
