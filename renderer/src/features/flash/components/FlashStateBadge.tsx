import { Badge } from '@mantine/core';
import type { FlashState } from '@tandem/contract';
import { flashStateLook } from '../hooks/flash-model.ts';

/** A flash mapping state in words, coloured (the words carry it; colour only helps). */
export function FlashStateBadge({ state, testId, size = 'md' }: { state: FlashState; testId?: string; size?: 'xs' | 'sm' | 'md' }) {
  const look = flashStateLook[state];
  return (
    <Badge color={look.color} variant="filled" radius="sm" size={size} data-testid={testId} data-state={state}>
      {look.label}
    </Badge>
  );
}
