import type { ModelManifest } from '@onnx-batch/contracts';

/**
 * One input or output of a model's graph, as far as the manifest check needs it. `type` is the
 * element type in ONNX Runtime's names, which are the manifest's dtypes (`float32`, `int64`,
 * `string`, `bool`…), null when the file does not declare it; `rank` is 0 when the graph gives no shape.
 */
export type GraphValue = { name: string; isTensor: true; type: string | null; rank: number } | { name: string; isTensor: false };

export interface GraphSignature {
  /** The graph's inputs, initializers left out (a caller cannot feed those). */
  inputs: GraphValue[];
  outputs: GraphValue[];
}

/**
 * Reads a model file's inputs and outputs, so the repository can check them against the
 * manifest. The worker reads them with ONNX Runtime (which also proves the graph loads); the API
 * and the scheduler read the file itself (onnx-file-reader.ts) and never load ONNX Runtime.
 */
export interface GraphReader {
  /** Names the reader in the problem of a file it cannot read: `<name> cannot load it: <why>`. */
  readonly name: string;
  /** Rejects when the file is not a model this reader can load. */
  read(modelPath: string): Promise<GraphSignature>;
}

/** A disagreement between the manifest (`field`) and the graph. */
export interface GraphFinding {
  field: string;
  message: string;
}

/** Checks that the graph's inputs and outputs agree with the manifest: names, element types, ranks. */
export function checkGraph(manifest: ModelManifest, graph: GraphSignature): GraphFinding[] {
  const findings: GraphFinding[] = [];
  const graphInputs = new Map(graph.inputs.map((m) => [m.name, m]));
  const graphOutputs = new Map(graph.outputs.map((m) => [m.name, m]));
  manifest.inputs.forEach((input, i) => {
    const meta = graphInputs.get(input.name);
    if (!meta) {
      findings.push({
        field: `inputs.${i}.name`,
        message: `graph has no input '${input.name}' (graph inputs: ${[...graphInputs.keys()].join(', ')})`,
      });
    } else if (meta.isTensor) {
      if (meta.type !== null && meta.type !== input.dtype)
        findings.push({ field: `inputs.${i}.dtype`, message: `is ${input.dtype} but the graph input is ${meta.type}` });
      if (meta.rank > 0 && meta.rank !== input.shape.length) {
        findings.push({ field: `inputs.${i}.shape`, message: `has rank ${input.shape.length} but the graph input has rank ${meta.rank}` });
      }
    }
  });
  for (const name of graphInputs.keys()) {
    if (!manifest.inputs.some((i) => i.name === name))
      findings.push({ field: 'inputs', message: `graph input '${name}' is not described` });
  }
  manifest.outputs.forEach((output, i) => {
    const meta = graphOutputs.get(output.name);
    if (!meta) {
      findings.push({
        field: `outputs.${i}.name`,
        message: `graph has no output '${output.name}' (graph outputs: ${[...graphOutputs.keys()].join(', ')})`,
      });
    } else if (!meta.isTensor) {
      findings.push({
        field: `outputs.${i}.name`,
        message: `graph output '${output.name}' is not a tensor (onnxruntime-node cannot return maps or sequences)`,
      });
    } else if (meta.type !== null && meta.type !== output.dtype) {
      findings.push({ field: `outputs.${i}.dtype`, message: `is ${output.dtype} but the graph output is ${meta.type}` });
    }
  });
  return findings;
}
