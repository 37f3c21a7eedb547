/**
 * @onnx-batch/cli: the typed client of the onnx-batch HTTP API (OnnxBatchClient), and the pieces
 * the `onnx-batch` command is made of (exit codes, formats, progress), for scripts that embed it.
 */
export * from './client';
export * from './errors';
export * from './exit-codes';
export * from './formats';
export * from './ndjson';
export * from './types';
export { writeFileAtomically } from './output-file';
export { runCli, describeError, DEFAULT_URL, type CliIo } from './program';
export {
  RateMeter,
  PlainJobProgress,
  jobProgressLine,
  formatDuration,
  formatCount,
  formatBytes,
  type JobProgress,
  type ProgressStream,
} from './progress';
export { rolloutSpec, specOf, parseShare, overwriteWarning, type RolloutSetFlags, type Share } from './commands/rollout-spec';
export { rolloutText, historyText } from './commands/rollout-text';
