import { Alert, Button, Group, List } from '@mantine/core';

/** The warnings of an action plan, shown before the person confirms it (nothing when there are none). */
export function ActionWarnings({ warnings }: { warnings: string[] }) {
  if (warnings.length === 0) return null;
  return (
    <Alert color="orange" title="Before you go on">
      <List size="sm">
        {warnings.map((warning) => (
          <List.Item key={warning}>{warning}</List.Item>
        ))}
      </List>
    </Alert>
  );
}

/** Cancel and the confirming button of an action modal; the button stays disabled until `ready`. */
export function ActionButtons({
  label,
  color,
  ready,
  pending,
  onCancel,
  onConfirm,
}: {
  label: string;
  color: string;
  ready: boolean;
  pending: boolean;
  onCancel: () => void;
  onConfirm: () => void;
}) {
  return (
    <Group justify="flex-end">
      <Button variant="default" onClick={onCancel}>
        Cancel
      </Button>
      <Button color={color} disabled={!ready} loading={pending} onClick={onConfirm}>
        {label}
      </Button>
    </Group>
  );
}
