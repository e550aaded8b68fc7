// `hermes-router <function> [flags]`: one CLI, one subcommand per deployable
// function. Each subcommand is a module in ./commands/ exporting `command`
// (name, summary, lazy loader), so adding a function touches no shared file
// and, say, check-config never loads gRPC or Redis.
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export interface SubcommandModule {
  command: {
    name: string;
    summary: string;
    /** Runs the function with its own flags; resolves to an exit code or runs until stopped. */
    run(args: string[]): Promise<number | void>;
  };
}

async function loadCommands(): Promise<SubcommandModule['command'][]> {
  const dir = join(dirname(fileURLToPath(import.meta.url)), 'commands');
  const files = readdirSync(dir).filter(
    (f) => /\.(js|ts)$/.test(f) && !f.endsWith('.d.ts') && !f.endsWith('.map'),
  );
  const mods = await Promise.all(
    files.map((f) => import(pathToFileURL(join(dir, f)).href) as Promise<SubcommandModule>),
  );
  return mods.map((m) => m.command).sort((a, b) => a.name.localeCompare(b.name));
}

function usage(cmds: SubcommandModule['command'][]): string {
  const width = Math.max(...cmds.map((c) => c.name.length));
  return [
    'Usage: hermes-router <function> [flags]   (--help on each for its flags)',
    '',
    'Hermes-router: a Kubernetes-native Endpoint Picker for LLM inference.',
    '',
    'Functions:',
    ...cmds.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
  ].join('\n');
}

export async function main(argv: string[]): Promise<void> {
  const cmds = await loadCommands();
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage(cmds));
    return;
  }
  const cmd = cmds.find((c) => c.name === name);
  if (!cmd) {
    process.stderr.write(`hermes-router: unknown function "${name}"\n\n${usage(cmds)}`);
    process.exitCode = 2;
    return;
  }
  const code = await cmd.run(rest);
  if (typeof code === 'number') process.exitCode = code;
}
