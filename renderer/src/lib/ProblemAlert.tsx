import { Alert, Code, Text } from '@mantine/core';
import { describeError } from './api-client.ts';

/** A failure as a person reads it: the message, and the stable problem code for support. */
export function ProblemAlert({ error, title = 'That did not work' }: { error: unknown; title?: string }) {
  const { problem, message } = describeError(error);
  return (
    <Alert color="red" title={title} role="alert" data-testid="problem">
      <Text size="sm" style={{ overflowWrap: 'anywhere' }}>
        {message}
      </Text>
      <Text size="xs" c="dimmed" mt={4}>
        problem code <Code>{problem}</Code>
      </Text>
    </Alert>
  );
}
