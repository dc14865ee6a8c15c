import { Text, Tooltip } from '@mantine/core';
import { cloneElement, type ReactElement } from 'react';

/**
 * An action this console's role may not take: shown disabled, with the
 * reason as its tooltip (and as its accessible description). With no
 * reason, the action as it is.
 */
export function RoleGated({ reason, children }: { reason: string | null; children: ReactElement<{ disabled?: boolean }> }) {
  if (!reason) return children;
  return (
    <Tooltip label={reason} withArrow multiline maw={320}>
      {/* A disabled button gets no pointer events: the wrapper carries the tooltip. */}
      <span data-testid="role-gated" aria-label={reason} style={{ display: 'inline-block', cursor: 'not-allowed' }}>
        {cloneElement(children, { disabled: true })}
      </span>
    </Tooltip>
  );
}

/** Why a whole group of actions is not shown: one sentence in their place. */
export function RoleNote({ children }: { children: string }) {
  return (
    <Text size="xs" c="dimmed" data-testid="role-note">
      {children}
    </Text>
  );
}
