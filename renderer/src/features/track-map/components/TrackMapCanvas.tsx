import { useComputedColorScheme } from '@mantine/core';
import { useElementSize } from '@mantine/hooks';
import { useEffect, useRef, type KeyboardEvent, type MouseEvent, type PointerEvent, type WheelEvent } from 'react';
import { gridFor, type ExpandedMap } from '../hooks/track-map-model.ts';
import { trackMapColors, type TrackMapColors } from './track-map-colors.ts';

const maxCellHeight = 22;

export interface TrackMapCanvasProps {
  map: ExpandedMap;
  onHover: (bucket: number | null) => void;
  /** factor < 1 zooms in around the bucket. */
  onZoom: (factor: number, bucket: number | null) => void;
  /** Pan by a number of buckets. */
  onPan: (buckets: number) => void;
  /** Other meanings for the bars (e.g. flash copy: copied / not yet copied), per colour scheme. */
  colors?: (scheme: 'light' | 'dark') => Partial<TrackMapColors>;
}

/**
 * The VTT drawn as a grid of cells, one per bucket the agent summarised:
 * each cell is a bar of shared (bottom), exclusive and unallocated tracks.
 * Wheel or +/- zoom, drag or arrow keys pan.
 */
export function TrackMapCanvas({ map, onHover, onZoom, onPan, colors: colorOverride }: TrackMapCanvasProps) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const { ref: box, width } = useElementSize();
  const scheme = useComputedColorScheme('light');
  const cells = map.tracks.length;
  const { columns, rows } = gridFor(cells);
  const cellWidth = width > 0 ? width / columns : 0;
  const cellHeight = Math.max(4, Math.min(maxCellHeight, cellWidth < 4 ? maxCellHeight : cellWidth));
  const height = Math.max(1, rows * cellHeight);
  const drag = useRef<{ x: number; moved: number } | null>(null);

  useEffect(() => {
    const element = canvas.current;
    if (!element || width === 0) return;
    const ratio = window.devicePixelRatio || 1;
    element.width = Math.round(width * ratio);
    element.height = Math.round(height * ratio);
    const context = element.getContext('2d');
    if (!context) return;
    const colors = { ...trackMapColors(scheme), ...colorOverride?.(scheme) };
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.fillStyle = colors.grid;
    context.fillRect(0, 0, width, height);
    const gap = cellWidth >= 6 ? 1 : 0;
    for (let bucket = 0; bucket < cells; bucket++) {
      const tracks = map.tracks[bucket];
      if (tracks === 0) continue;
      const x = (bucket % columns) * cellWidth;
      const y = Math.floor(bucket / columns) * cellHeight;
      const w = Math.max(1, cellWidth - gap);
      const h = cellHeight - gap;
      const sharedHeight = (map.shared[bucket] / tracks) * h;
      const exclusiveHeight = ((map.allocated[bucket] - map.shared[bucket]) / tracks) * h;
      context.fillStyle = colors.unallocated;
      context.fillRect(x, y, w, h);
      context.fillStyle = colors.exclusive;
      context.fillRect(x, y + h - sharedHeight - exclusiveHeight, w, exclusiveHeight);
      context.fillStyle = colors.shared;
      context.fillRect(x, y + h - sharedHeight, w, sharedHeight);
    }
  }, [map, width, height, cellWidth, cellHeight, columns, cells, scheme, colorOverride]);

  const bucketAt = (event: MouseEvent | WheelEvent): number | null => {
    const rect = event.currentTarget.getBoundingClientRect();
    const column = Math.floor((event.clientX - rect.left) / cellWidth);
    const row = Math.floor((event.clientY - rect.top) / cellHeight);
    const bucket = row * columns + column;
    return column >= 0 && column < columns && bucket >= 0 && bucket < cells ? bucket : null;
  };

  const onKeyDown = (event: KeyboardEvent) => {
    const step = Math.max(1, Math.floor(cells / 4));
    if (event.key === '+' || event.key === '=') onZoom(0.5, null);
    else if (event.key === '-') onZoom(2, null);
    else if (event.key === 'ArrowRight') onPan(step);
    else if (event.key === 'ArrowLeft') onPan(-step);
    else return;
    event.preventDefault();
  };

  return (
    <div ref={box} style={{ width: '100%' }}>
      <canvas
        ref={canvas}
        data-testid="track-map-canvas"
        tabIndex={0}
        role="img"
        aria-label="Track map: use + and - to zoom, arrow keys to move"
        style={{ width: '100%', height, display: 'block', cursor: drag.current ? 'grabbing' : 'crosshair', touchAction: 'none' }}
        onMouseMove={(event) => {
          if (!drag.current) onHover(bucketAt(event));
        }}
        onMouseLeave={() => onHover(null)}
        onWheel={(event) => {
          if (event.deltaY === 0) return;
          onZoom(event.deltaY < 0 ? 0.5 : 2, bucketAt(event));
        }}
        onPointerDown={(event: PointerEvent<HTMLCanvasElement>) => {
          drag.current = { x: event.clientX, moved: 0 };
          event.currentTarget.setPointerCapture(event.pointerId);
        }}
        onPointerMove={(event: PointerEvent<HTMLCanvasElement>) => {
          if (!drag.current || cellWidth === 0) return;
          const buckets = Math.trunc((drag.current.x - event.clientX) / cellWidth);
          if (buckets !== 0) {
            drag.current = { x: event.clientX, moved: drag.current.moved + buckets };
            onPan(buckets);
          }
        }}
        onPointerUp={() => {
          drag.current = null;
        }}
        onKeyDown={onKeyDown}
      />
    </div>
  );
}
