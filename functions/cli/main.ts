// `hermes-router <function> [flags]`: one CLI, one subcommand per deployable
// function. Each function's single entry, functions/<fn>/main.ts, exports a
// `command` (name, summary, run) and loads its server code only when run, so
// adding a function touches no shared file and, say, check-config never loads
// gRPC or Redis.
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { FunctionCommand } from '../../src/config/cli-options.js';

export interface SubcommandModule {
  command: FunctionCommand;
}

async function loadCommands(): Promise<FunctionCommand[]> {
  const functions = dirname(dirname(fileURLToPath(import.meta.url)));
  const ext = fileURLToPath(import.meta.url).endsWith('.ts') ? 'ts' : 'js';
  const legacy = join(functions, 'cli', 'commands');
  const legacyFiles = existsSync(legacy)
    ? readdirSync(legacy).filter((f) => f.endsWith(`.${ext}`) && !f.endsWith('.d.ts'))
    : [];
  const legacyNames = new Set(legacyFiles.map((f) => f.slice(0, -ext.length - 1)));
  const entries = [
    ...legacyFiles.map((f) => join(legacy, f)),
    ...readdirSync(functions, { withFileTypes: true })
      .filter((d) => d.isDirectory() && d.name !== 'cli' && !legacyNames.has(d.name))
      .map((d) => join(functions, d.name, `main.${ext}`))
      .filter((f) => existsSync(f)),
  ];
  const mods = await Promise.all(
    entries.map((f) => import(pathToFileURL(f).href) as Promise<SubcommandModule>),
  );
  return mods.map((m) => m.command).sort((a, b) => a.name.localeCompare(b.name));
}

function usage(cmds: FunctionCommand[]): string {
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
