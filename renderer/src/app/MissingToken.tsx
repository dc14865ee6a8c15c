import { Center, Stack, Text, Title } from '@mantine/core';

/** Shown when the page was opened without the backend's token (e.g. a bookmarked address). */
export function MissingToken() {
  return (
    <Center h="100vh">
      <Stack maw={520}>
        <Title order={2}>Open the console from its printed address</Title>
        <Text>
          This page needs the access token of the running console backend. Use the full address that <code>npm start</code> printed (it ends with{' '}
          <code>#token=…</code>), or start the desktop app.
        </Text>
      </Stack>
    </Center>
  );
}
