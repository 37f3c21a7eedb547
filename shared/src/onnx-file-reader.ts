import { readFile } from 'node:fs/promises';
import { Root } from 'protobufjs/light';
import type { GraphReader, GraphSignature, GraphValue } from './graph-reader';

/**
 * The few messages of `onnx.proto` (ONNX's own schema) that hold a graph's inputs and outputs,
 * with their field numbers. Every other field (nodes, weights, metadata) is skipped unread.
 */
const ONNX_MESSAGES = {
  nested: {
    onnx: {
      nested: {
        ModelProto: { fields: { irVersion: { type: 'int64', id: 1 }, graph: { type: 'GraphProto', id: 7 } } },
        GraphProto: {
          fields: {
            initializer: { rule: 'repeated', type: 'TensorProto', id: 5 },
            input: { rule: 'repeated', type: 'ValueInfoProto', id: 11 },
            output: { rule: 'repeated', type: 'ValueInfoProto', id: 12 },
            sparseInitializer: { rule: 'repeated', type: 'SparseTensorProto', id: 15 },
          },
        },
        TensorProto: { fields: { name: { type: 'string', id: 8 } } },
        SparseTensorProto: { fields: { values: { type: 'TensorProto', id: 1 } } },
        ValueInfoProto: { fields: { name: { type: 'string', id: 1 }, type: { type: 'TypeProto', id: 2 } } },
        TypeProto: {
          fields: { tensorType: { type: 'TypeProto.Tensor', id: 1 } },
          nested: { Tensor: { fields: { elemType: { type: 'int32', id: 1 }, shape: { type: 'TensorShapeProto', id: 2 } } } },
        },
        TensorShapeProto: {
          fields: { dim: { rule: 'repeated', type: 'TensorShapeProto.Dimension', id: 1 } },
          nested: { Dimension: { fields: {} } },
        },
      },
    },
  },
};

const MODEL_PROTO = Root.fromJSON(ONNX_MESSAGES).lookupType('onnx.ModelProto');

interface ValueInfo {
  name?: string;
  type?: { tensorType?: { elemType?: number; shape?: { dim: unknown[] } } };
}

interface Model {
  irVersion?: number;
  graph?: {
    initializer: { name?: string }[];
    sparseInitializer: { values?: { name?: string } }[];
    input: ValueInfo[];
    output: ValueInfo[];
  };
}

/** `TensorProto.DataType` → ONNX Runtime's name of it (onnxruntime-node's own table: the types it can hand over). */
const ELEMENT_TYPES: Record<number, string> = {
  1: 'float32',
  2: 'uint8',
  3: 'int8',
  4: 'uint16',
  5: 'int16',
  6: 'int32',
  7: 'int64',
  8: 'string',
  9: 'bool',
  10: 'float16',
  11: 'float64',
  12: 'uint32',
  13: 'uint64',
  21: 'uint4',
  22: 'int4',
};

/**
 * Reads a graph's inputs and outputs from the ONNX file itself (a protobuf), without ONNX
 * Runtime, and refuses what ONNX Runtime would refuse for the same reason, in its words: no IR
 * version, no graph, an input without a type, an element type it cannot hand over. It does not
 * prove the graph runs (an operator ONNX Runtime lacks, say): the workers find that out when they
 * load it, and serve no such version. An output whose type the file leaves to inference gets
 * `type: null` (not checked here; the workers check it).
 */
export const onnxFileReader: GraphReader = {
  name: 'The ONNX file reader',
  async read(modelPath: string): Promise<GraphSignature> {
    const bytes = await readFile(modelPath);
    let model: Model;
    try {
      model = MODEL_PROTO.toObject(MODEL_PROTO.decode(bytes), { longs: Number, arrays: true });
    } catch (error) {
      throw new Error(`Protobuf parsing failed: ${(error as Error).message}`, { cause: error });
    }
    if (!model.irVersion) throw new Error('Missing model IR version.');
    const graph = model.graph;
    if (!graph) throw new Error('ModelProto does not have a graph.');
    // Initializers listed among the inputs (as IR < 4 requires) are weights, not inputs: ONNX Runtime leaves them out too.
    const initializers = new Set([...graph.initializer.map((t) => t.name), ...graph.sparseInitializer.map((t) => t.values?.name)]);
    return {
      inputs: graph.input.filter((v) => !initializers.has(v.name)).map((v) => graphValue(v, 'input')),
      outputs: graph.output.map((v) => graphValue(v, 'output')),
    };
  },
};

function graphValue(value: ValueInfo, kind: 'input' | 'output'): GraphValue {
  const name = value.name ?? '';
  if (!value.type) {
    if (kind === 'input') throw new Error(`Model input (${name}) does not have type information.`);
    return { name, isTensor: true, type: null, rank: 0 };
  }
  const tensor = value.type.tensorType;
  if (!tensor) return { name, isTensor: false };
  const code = tensor.elemType ?? 0;
  if (code === 0) throw new Error('Invalid tensor data type 0.');
  const type = ELEMENT_TYPES[code];
  if (type === undefined) throw new Error(`Unsupported data type: ${code}`);
  return { name, isTensor: true, type, rank: tensor.shape?.dim.length ?? 0 };
}
