import { Alert, Text } from '@mantine/core';
import type { SessionInfo } from '@tandem/contract';
import { lastVerifyText } from '../hooks/copy-sets.ts';

/** The verify the agent recorded (by itself after a failback, or on request); nothing before the first. */
export function LastVerifySummary({ session }: { session: SessionInfo }) {
  if (!session.lastVerify) return null;
  const { headline, explanation } = lastVerifyText(session.lastVerify, session);
  return (
    <Alert color={session.lastVerify.ok ? 'green' : 'orange'} p="xs" data-testid="last-verify">
      <Text size="sm">{headline}</Text>
      {explanation && (
        <Text size="sm" mt={2}>
          {explanation}
        </Text>
      )}
    </Alert>
  );
}
