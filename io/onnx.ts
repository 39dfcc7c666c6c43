/**
 * The inference graph as an ONNX model (opset 13), written with a few lines of protobuf: grouped
 * `Conv`, `Relu`, the paper's LRN within each tower (`Split`, `LRN`, `Concat`), `MaxPool`,
 * `Flatten` and `Gemm`; dropout is the identity at inference. The weights are initializers under
 * this project's names; metadata carries the class names and preprocessing.
 *
 * @module
 */
import type { LayerSpec, ModelConfig } from "../layers/models.ts";
import type { NamedTensor } from "./safetensors.ts";

/** A protobuf message being written: fields in order. */
class Message {
  readonly #parts: Uint8Array[] = [];

  #varint(value: number | bigint): void {
    let v = BigInt.asUintN(64, BigInt(value));
    const bytes: number[] = [];
    do {
      const low = Number(v & 0x7fn);
      v >>= 7n;
      bytes.push(v > 0n ? low | 0x80 : low);
    } while (v > 0n);
    this.#parts.push(Uint8Array.from(bytes));
  }

  int(field: number, value: number): this {
    this.#varint(field << 3);
    this.#varint(value);
    return this;
  }

  float(field: number, value: number): this {
    this.#varint((field << 3) | 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.#parts.push(b);
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.#varint((field << 3) | 2);
    this.#varint(value.length);
    this.#parts.push(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  message(field: number, value: Message): this {
    return this.bytes(field, value.encode());
  }

  encode(): Uint8Array {
    const out = new Uint8Array(this.#parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of this.#parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

type Attribute = number | number[] | string;

/** A NodeProto: op, inputs, outputs and attributes (ints, floats with a ".0"-free check, strings). */
function node(
  op: string,
  inputs: string[],
  outputs: string[],
  attributes: Record<string, Attribute> = {},
  floats: ReadonlySet<string> = new Set(),
): Message {
  const m = new Message();
  for (const i of inputs) m.string(1, i);
  for (const o of outputs) m.string(2, o);
  m.string(3, outputs[0]).string(4, op);
  for (const [name, value] of Object.entries(attributes)) {
    const a = new Message().string(1, name);
    if (typeof value === "string") a.string(4, value).int(20, 3);
    else if (Array.isArray(value)) {
      for (const v of value) a.int(8, v);
      a.int(20, 7);
    } else if (floats.has(name)) a.float(2, value).int(20, 1);
    else a.int(3, value).int(20, 2);
    m.message(5, a);
  }
  return m;
}

/** A float32 TensorProto initializer. */
function initializer(name: string, t: NamedTensor): Message {
  const m = new Message();
  for (const d of t.shape) m.int(1, d);
  m.int(2, 1).string(8, name);
  return m.bytes(9, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
}

/** A float32 ValueInfoProto with `dims` (a string is a symbolic dimension). */
function value(name: string, dims: (number | string)[]): Message {
  const shape = new Message();
  for (const d of dims) {
    shape.message(1, typeof d === "string" ? new Message().string(2, d) : new Message().int(1, d));
  }
  const tensor = new Message().int(1, 1).message(2, shape);
  return new Message().string(1, name).message(2, new Message().message(1, tensor));
}

/** The nodes of one layer, reading `x`; returns them and the name of the layer's output. */
function layerNodes(layer: LayerSpec, x: string, flat: boolean): { nodes: Message[]; y: string } {
  const y = layer.name;
  switch (layer.kind) {
    case "conv": {
      const k = layer.kernel, s = layer.stride ?? 1, p = layer.pad ?? 0;
      const conv = node("Conv", [x, `${y}.weight`, `${y}.bias`], [
        layer.relu === false ? y : `${y}.z`,
      ], {
        kernel_shape: [k, k],
        strides: [s, s],
        pads: [p, p, p, p],
        group: layer.groups ?? 1,
      });
      return layer.relu === false
        ? { nodes: [conv], y }
        : { nodes: [conv, node("Relu", [`${y}.z`], [y])], y };
    }
    case "dense": {
      const input = flat ? x : `${y}.flat`;
      const nodes = flat ? [] : [node("Flatten", [x], [input], { axis: 1 })];
      const out = layer.relu === false ? y : `${y}.z`;
      nodes.push(node("Gemm", [input, `${y}.weight`, `${y}.bias`], [out], { transB: 1 }));
      if (layer.relu !== false) nodes.push(node("Relu", [out], [y]));
      return { nodes, y };
    }
    case "lrn": {
      // ONNX's LRN divides alpha by the window's size; the paper's does not. Within each tower.
      const { size, alpha, beta, k, groups } = layer.params;
      const lrn = (from: string, to: string) =>
        node(
          "LRN",
          [from],
          [to],
          { size, alpha: alpha * size, beta, bias: k },
          new Set(["alpha", "beta", "bias"]),
        );
      if (groups === 1) return { nodes: [lrn(x, y)], y };
      const parts = Array.from({ length: groups }, (_, g) => `${y}.part${g}`);
      return {
        nodes: [
          node("Split", [x], parts, { axis: 1 }),
          ...parts.map((part) => lrn(part, `${part}.lrn`)),
          node("Concat", parts.map((part) => `${part}.lrn`), [y], { axis: 1 }),
        ],
        y,
      };
    }
    case "maxpool":
      return {
        nodes: [node("MaxPool", [x], [y], {
          kernel_shape: [layer.size, layer.size],
          strides: [layer.stride, layer.stride],
        })],
        y,
      };
    case "dropout":
      return { nodes: [], y: x };
  }
}

/**
 * The ONNX model of `config`'s inference graph with `weights` (this project's names) as its
 * initializers: input "input" [batch, ...config.input], output "logits" [batch, classes].
 *
 * @example
 * ```ts
 * import { ALEXNET_SMALL } from "../layers/models.ts";
 * import { createAlexNet } from "../layers/network.ts";
 * import { onnxModel } from "./onnx.ts";
 * const net = await createAlexNet({ model: "alexnet-small", seed: 1 });
 * const bytes = onnxModel(ALEXNET_SMALL, await net.weights(), { model: "alexnet-small" });
 * console.log(bytes.length > 4_000_000); // true: 1.1 million float32 weights
 * await net.destroy();
 * ```
 */
export function onnxModel(
  config: ModelConfig,
  weights: ReadonlyMap<string, NamedTensor>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const graph = new Message();
  let x = "input", flat = false;
  config.layers.forEach((layer, i) => {
    const last = i === config.layers.length - 1;
    const out = layerNodes(layer, x, flat);
    for (const n of out.nodes) graph.message(1, n);
    flat ||= layer.kind === "dense";
    x = out.y;
    if (last) graph.message(1, node("Identity", [x], ["logits"]));
  });
  graph.string(2, config.name);
  for (const [name, t] of weights) graph.message(5, initializer(name, t));
  graph.message(11, value("input", ["batch", ...config.input]));
  graph.message(12, value("logits", ["batch", config.classes]));
  const model = new Message().int(1, 7).string(2, "alexnet-webgpu").message(7, graph)
    .message(8, new Message().string(1, "").int(2, 13));
  for (const [key, v] of Object.entries(metadata)) {
    model.message(14, new Message().string(1, key).string(2, v));
  }
  return model.encode();
}
