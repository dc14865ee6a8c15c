import { Button, Group, Modal, NumberInput, Radio, Stack, Text } from '@mantine/core';
import type { FlashSessionInfo } from '@tandem/contract';
import { useState } from 'react';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import { defaultDraft, draftProblems } from '../hooks/flash-model.ts';
import { useUpdateFlash } from '../hooks/use-flash.ts';

/** Changes the background copy rate of a running session: as fast as the disks go, or limited to spare host I/O. */
export function FlashRateModal({ siteId, session, onClose }: { siteId: string; session: FlashSessionInfo; onClose: () => void }) {
  const update = useUpdateFlash();
  const [limited, setLimited] = useState(session.options.rateMiBps !== null);
  const [rate, setRate] = useState<number | string>(session.options.rateMiBps ?? 100);
  const problem = draftProblems({ ...defaultDraft, pairs: [{ source: '-', target: '-' }], rateLimited: limited, rateMiBps: rate }).rate;
  return (
    <Modal opened onClose={onClose} title={`Background copy rate of ${session.name}`}>
      <Stack>
        <Text size="sm">The copy goes on from where it is; only its pace changes.</Text>
        <Group align="flex-start">
          <Radio.Group value={limited ? 'limited' : 'full'} onChange={(value) => setLimited(value === 'limited')} aria-label="Background copy rate">
            <Stack gap={6}>
              <Radio value="full" label="As fast as the disks go" />
              <Radio value="limited" label="Limited, to spare host I/O" />
            </Stack>
          </Radio.Group>
          <NumberInput label="Rate (MiB/s)" value={rate} onChange={setRate} disabled={!limited} min={1} max={100_000} w={160} error={problem} data-autofocus />
        </Group>
        {update.error && <ProblemAlert error={update.error} title="The rate was not changed" />}
        <Group justify="flex-end">
          <Button variant="default" onClick={onClose}>
            Cancel
          </Button>
          <Button
            disabled={Boolean(problem)}
            loading={update.isPending}
            onClick={() => update.mutate({ siteId, name: session.name, request: { rateMiBps: limited ? Number(rate) : null } }, { onSuccess: onClose })}
          >
            Set rate
          </Button>
        </Group>
      </Stack>
    </Modal>
  );
}
