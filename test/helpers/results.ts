import { decodeResultChunk, renderResultLines } from '@onnx-batch/shared';

/** The JSON result lines of a pool outcome (its compact results, rendered as the API serves them), joined by '\n'. */
export function outcomeLines(outcome: { results: Uint8Array }): string {
  return renderResultLines(
    decodeResultChunk(Buffer.from(outcome.results.buffer, outcome.results.byteOffset, outcome.results.byteLength)),
  ).join('\n');
}
