import { Badge, Group, Text } from '@mantine/core';
import type { MemberHealth } from '@tandem/contract';
import { healthLook, stateLabel } from '../hooks/session-model.ts';

/** The state with the health overlay: a badge coloured by health, and the health in words (colour is never the only cue). */
export function StateBadge({ state, health, testId }: { state: string; health: MemberHealth; testId?: string }) {
  const look = healthLook[health];
  return (
    <Group gap={6} wrap="nowrap" data-testid={testId}>
      <Badge color={look.color} variant="filled" radius="sm" data-health={health}>
        {stateLabel(state)}
      </Badge>
      <Text size="xs" c={look.color === 'gray' ? 'dimmed' : look.color} fw={600}>
        {look.label}
      </Text>
    </Group>
  );
}
