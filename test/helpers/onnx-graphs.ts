import { Root } from 'protobufjs';

/**
 * Writes small ONNX models for the graph reader tests: the messages of `onnx.proto` a one-node
 * graph needs (ONNX's field numbers), enough for ONNX Runtime to load the result; with node
 * names, attributes and raw tensor data, enough to read a small model and write it back changed
 * (decodeOnnxModel / encodeOnnxModel).
 */
const ONNX_MESSAGES = {
  nested: {
    onnx: {
      nested: {
        ModelProto: {
          fields: {
            irVersion: { type: 'int64', id: 1 },
            graph: { type: 'GraphProto', id: 7 },
            opsetImport: { rule: 'repeated', type: 'OperatorSetIdProto', id: 8 },
          },
        },
        OperatorSetIdProto: { fields: { domain: { type: 'string', id: 1 }, version: { type: 'int64', id: 2 } } },
        GraphProto: {
          fields: {
            node: { rule: 'repeated', type: 'NodeProto', id: 1 },
            name: { type: 'string', id: 2 },
            initializer: { rule: 'repeated', type: 'TensorProto', id: 5 },
            input: { rule: 'repeated', type: 'ValueInfoProto', id: 11 },
            output: { rule: 'repeated', type: 'ValueInfoProto', id: 12 },
          },
        },
        NodeProto: {
          fields: {
            input: { rule: 'repeated', type: 'string', id: 1 },
            output: { rule: 'repeated', type: 'string', id: 2 },
            name: { type: 'string', id: 3 },
            opType: { type: 'string', id: 4 },
            attribute: { rule: 'repeated', type: 'AttributeProto', id: 5 },
            domain: { type: 'string', id: 7 },
          },
        },
        AttributeProto: {
          fields: {
            name: { type: 'string', id: 1 },
            f: { type: 'float', id: 2 },
            i: { type: 'int64', id: 3 },
            ints: { rule: 'repeated', type: 'int64', id: 8 },
            type: { type: 'int32', id: 20 },
          },
        },
        TensorProto: {
          fields: {
            dims: { rule: 'repeated', type: 'int64', id: 1 },
            dataType: { type: 'int32', id: 2 },
            floatData: { rule: 'repeated', type: 'float', id: 4 },
            int64Data: { rule: 'repeated', type: 'int64', id: 7 },
            name: { type: 'string', id: 8 },
            rawData: { type: 'bytes', id: 9 },
          },
        },
        ValueInfoProto: { fields: { name: { type: 'string', id: 1 }, type: { type: 'TypeProto', id: 2 } } },
        TypeProto: {
          fields: { tensorType: { type: 'TypeProto.Tensor', id: 1 }, sequenceType: { type: 'TypeProto.Sequence', id: 4 } },
          nested: {
            Tensor: { fields: { elemType: { type: 'int32', id: 1 }, shape: { type: 'TensorShapeProto', id: 2 } } },
            Sequence: { fields: { elemType: { type: 'TypeProto', id: 1 } } },
          },
        },
        TensorShapeProto: {
          fields: { dim: { rule: 'repeated', type: 'TensorShapeProto.Dimension', id: 1 } },
          nested: { Dimension: { fields: { dimValue: { type: 'int64', id: 1 }, dimParam: { type: 'string', id: 2 } } } },
        },
      },
    },
  },
};

const MODEL_PROTO = Root.fromJSON(ONNX_MESSAGES).lookupType('onnx.ModelProto');

/** `TensorProto.DataType` codes used here. */
export const ELEM = { FLOAT: 1, INT64: 7, BFLOAT16: 16 } as const;

/** `AttributeProto.AttributeType` codes used here. */
export const ATTRIBUTE = { FLOAT: 1, INT: 2, INTS: 7 } as const;

/** A tensor type; `dims` of numbers and symbolic names, or no shape at all. */
export function tensorType(elemType: number, dims?: (number | string)[]): Record<string, unknown> {
  const shape = dims && { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) };
  return { tensorType: { elemType, ...(shape ? { shape } : {}) } };
}

export interface ValueInfo {
  name: string;
  type?: Record<string, unknown>;
}

export interface GraphSpec {
  irVersion?: number;
  /** One node: `opType(inputs) → outputs`. */
  node: { opType: string; input: string[]; output: string[] };
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  /** Float initializers of one element each. */
  initializers?: { name: string; value: number }[];
}

/** The bytes of a one-node ONNX model (opset 13); `irVersion: 0` leaves the IR version out, `graph: false` the graph. */
export function onnxModel(spec: GraphSpec, options: { graph?: boolean } = {}): Uint8Array {
  const graph = {
    name: 'g',
    node: [spec.node],
    initializer: (spec.initializers ?? []).map((i) => ({ name: i.name, dims: [1], dataType: ELEM.FLOAT, floatData: [i.value] })),
    input: spec.inputs,
    output: spec.outputs,
  };
  const model = {
    ...(spec.irVersion === 0 ? {} : { irVersion: spec.irVersion ?? 8 }),
    opsetImport: [{ domain: '', version: 13 }],
    ...(options.graph === false ? {} : { graph }),
  };
  return MODEL_PROTO.encode(MODEL_PROTO.fromObject(model)).finish();
}

/** A model as decodeOnnxModel reads it: the fields above, int64s as numbers, raw tensor data as bytes. */
export interface OnnxModelObject {
  irVersion?: number;
  opsetImport?: { domain?: string; version?: number }[];
  graph?: {
    name?: string;
    node?: {
      input?: string[];
      output?: string[];
      name?: string;
      opType?: string;
      domain?: string;
      attribute?: { name: string; f?: number; i?: number; ints?: number[]; type: number }[];
    }[];
    initializer?: {
      name: string;
      dims?: number[];
      dataType: number;
      floatData?: number[];
      int64Data?: number[];
      rawData?: Uint8Array;
    }[];
    input?: ValueInfo[];
    output?: ValueInfo[];
  };
}

/** Reads an ONNX model's fields of the messages above (anything else in the file is dropped). */
export function decodeOnnxModel(bytes: Uint8Array): OnnxModelObject {
  const model: OnnxModelObject = MODEL_PROTO.toObject(MODEL_PROTO.decode(bytes), { longs: Number, arrays: true });
  return model;
}

export function encodeOnnxModel(model: OnnxModelObject): Uint8Array {
  return MODEL_PROTO.encode(MODEL_PROTO.fromObject(model)).finish();
}
