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
      {/* Multi-primary sessions: each copy set with the site holding its H1 volume, as the agent recorded it. */}
      {session.lastVerify.pairs?.some((each) => each.primarySite) &&
        session.lastVerify.pairs.map((each) => (
          <Text key={each.pair} size="xs" mt={2} data-testid={`last-verify-copy-set-${each.h1Volume}`}>
            {each.h1Volume} ⇄ {each.h2Volume}
            {each.primarySite ? `, primary at ${each.primarySite}` : ''}: {each.comparedTracks.toLocaleString('en-US')} compared, {each.differingTracks.toLocaleString('en-US')} differ
            {each.unverifiedTracks > 0 ? `, ${each.unverifiedTracks.toLocaleString('en-US')} unverified` : ''}
          </Text>
        ))}
    </Alert>
  );
}
