#!/usr/bin/env node
// The one CLI entry: every function of the product is a subcommand.
import('../dist/functions/cli/main.js').then((m) => m.main(process.argv.slice(2)));
