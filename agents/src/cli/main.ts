/**
 * `tandem-agent`: the agent daemon (`run`), its set-up commands and the
 * admin commands that talk to a running agent as the local admin.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { agentPackageDir } from '../package-dir.ts';
import { registerAdminCommands } from './commands/admin.ts';
import { registerAlertCommands } from './commands/alerts.ts';
import { registerAuditCommands } from './commands/audit.ts';
import { registerClientCommands } from './commands/clients.ts';
import { registerClusterCommands } from './commands/clusters.ts';
import { registerFlashCommands } from './commands/flash.ts';
import { registerJournalCommands } from './commands/journal.ts';
import { registerNbdClientCommands } from './commands/nbd-clients.ts';
import { registerReplicationCommands } from './commands/replication.ts';
import { registerSetupCommands } from './commands/setup.ts';
import { reportError } from './output.ts';

/** Exit codes: 0 done, 1 refused or failed, 2 usage error. */
export async function main(argv: string[]): Promise<number> {
  const program = new Command('tandem-agent')
    .description('Tandem storage agent: thin volumes over NBD, replication, control API')
    .version(packageVersion(), '-V, --version', 'print the agent version')
    .showHelpAfterError('(add --help for usage)')
    .configureOutput({
      // Usage errors carry a problem code like every other error.
      outputError: (text, write) => write(text.replace(/^error: /, 'error: bad-request: ')),
    })
    .exitOverride();
  registerSetupCommands(program);
  registerAdminCommands(program);
  registerReplicationCommands(program);
  registerClusterCommands(program);
  registerFlashCommands(program);
  registerNbdClientCommands(program);
  registerAuditCommands(program);
  registerAlertCommands(program);
  registerJournalCommands(program);
  registerClientCommands(program);
  for (const command of allCommands(program)) command.exitOverride();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander already printed the message (or the help that was asked for).
      return error.exitCode === 0 ? 0 : 2;
    }
    return reportError(error, argv.includes('--json'));
  }
}

function packageVersion(): string {
  return (JSON.parse(readFileSync(path.join(agentPackageDir(), 'package.json'), 'utf8')) as { version: string }).version;
}

function allCommands(command: Command): Command[] {
  return command.commands.flatMap((child) => [child, ...allCommands(child)]);
}

/** The process's entry (bin/tandem-agent.cjs calls it, from the build or the sources). */
export async function runCli(argv: string[]): Promise<void> {
  const code = await main(argv);
  // `run` keeps the process alive until a signal; everything else ends here.
  if (!(argv[0] === 'run' && code === 0)) {
    process.exitCode = code;
    if (code !== 0) process.exit(code);
  }
}
