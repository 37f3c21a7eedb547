import * as ort from 'onnxruntime-node';
import type { GraphReader, GraphSignature, GraphValue } from '@onnx-batch/shared';

/**
 * Reads a graph's inputs and outputs by opening it with ONNX Runtime: the worker's check, since
 * the worker runs the graph. Besides the file reader's checks it proves the graph loads
 * (operators, opsets) and gives the types ONNX Runtime infers for outputs the file leaves untyped.
 */
export const onnxRuntimeReader: GraphReader = {
  name: 'ONNX Runtime',
  async read(modelPath: string): Promise<GraphSignature> {
    const session = await ort.InferenceSession.create(modelPath, { graphOptimizationLevel: 'disabled' });
    try {
      return { inputs: session.inputMetadata.map(graphValue), outputs: session.outputMetadata.map(graphValue) };
    } finally {
      await session.release();
    }
  },
};

function graphValue(meta: ort.InferenceSession.ValueMetadata): GraphValue {
  return meta.isTensor
    ? { name: meta.name, isTensor: true, type: meta.type, rank: meta.shape.length }
    : { name: meta.name, isTensor: false };
}
