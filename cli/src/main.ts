#!/usr/bin/env node
import { runCli } from './program';

/** `onnx-batch`: SIGINT/SIGTERM stop waiting (the job goes on on the server) and exit 130. */
const controller = new AbortController();
for (const name of ['SIGINT', 'SIGTERM'] as const) {
  process.once(name, () => controller.abort(new Error(`${name} received`)));
}

void runCli(process.argv, { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr }, controller.signal).then((code) => {
  process.exitCode = code;
});
