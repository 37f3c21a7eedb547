#!/usr/bin/env node
import { runCli } from './program';

/** `onnx-batch`: SIGINT/SIGTERM stop waiting (the job goes on on the server) and exit 130. */
const controller = new AbortController();
for (const name of ['SIGINT', 'SIGTERM'] as const) {
  process.once(name, () => controller.abort(new Error(`${name} received`)));
}

// `onnx-batch … | head`: once the reader has gone, stop quietly, as Unix tools do, instead of
// dying on an unhandled EPIPE.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
  process.exit(0);
});

void runCli(process.argv, { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr }, controller.signal).then((code) => {
  process.exitCode = code;
});
