/**
 * PyTorch's checkpoint files (`.pth`, `torch.save`) read without Python and without running them:
 * the zip format `torch.save` writes since PyTorch 1.6 (`ARCHIVE/data.pkl`, `ARCHIVE/data/N`)
 * and the legacy format (`_use_new_zipfile_serialization=False`: pickles, then the storages). The
 * pickle goes through `pickle.ts` with only a state_dict's globals allowed; the tensors, float32,
 * contiguous or not, are copied out honouring size, stride and storage offset.
 *
 * @module
 */
import { PickleError, type PickleGlobal, type PickleValue, readPickle } from "./pickle.ts";
import type { NamedTensor } from "./safetensors.ts";

/** A `.pth` file this reader refuses, with what was refused. */
export class PthError extends Error {
  /**
   * An error with `message`.
   *
   * @example
   * ```ts
   * import { PthError } from "./pth.ts";
   * console.log(new PthError("truncated").name); // "PthError"
   * ```
   */
  constructor(message: string) {
    super(message);
    this.name = "PthError";
  }
}

const GLOBALS = new Set([
  "collections.OrderedDict",
  "torch._utils._rebuild_tensor_v2",
  "torch._utils._rebuild_parameter",
  "torch.FloatStorage",
]);

/** A storage a tensor views: its key and length in elements. */
interface StorageRef {
  readonly storage: string;
  readonly numel: number;
}

/** A tensor as the pickle describes it, before its storage is read. */
interface TensorRef {
  readonly tensor: StorageRef;
  readonly offset: number;
  readonly size: number[];
  readonly stride: number[];
}

/**
 * Whether `bytes` look like a `.pth` file (a zip archive or a pickle) rather than safetensors.
 *
 * @example
 * ```ts
 * import { isPth } from "./pth.ts";
 * console.log(isPth(new Uint8Array([0x50, 0x4b, 3, 4]))); // true
 * ```
 */
export function isPth(bytes: Uint8Array): boolean {
  return (bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 3 && bytes[3] === 4) ||
    (bytes[0] === 0x80 && bytes[1] >= 2 && bytes[1] <= 5);
}

/**
 * The float32 tensors of a `.pth` file holding a state_dict (or a dict holding one under
 * `state_dict` or `model`), by name. Throws {@linkcode PthError} naming anything refused.
 *
 * @example
 * ```ts ignore
 * import { parsePth } from "./pth.ts";
 * const tensors = parsePth(await Deno.readFile("alexnet-owt-7be5be79.pth"));
 * console.log(tensors.get("features.0.weight")?.shape); // [64, 3, 11, 11]
 * ```
 */
export function parsePth(bytes: Uint8Array): Map<string, NamedTensor> {
  try {
    const zip = bytes[0] === 0x50 && bytes[1] === 0x4b;
    return zip ? fromZip(bytes) : fromLegacy(bytes);
  } catch (e) {
    if (e instanceof PickleError) throw new PthError(e.message);
    throw e;
  }
}

/** The pickle's rules: the allowed calls build references, storages are recorded by key. */
function rules(storages: Map<string, number>) {
  return {
    globals: GLOBALS,
    persistent(id: PickleValue): PickleValue {
      // ("storage", FloatStorage, key, location, numel[, view metadata])
      if (!Array.isArray(id) || id[0] !== "storage" || typeof id[2] !== "string") {
        throw new PthError("a persistent id that is not a storage");
      }
      const [, type, key, , numel] = id;
      if ((type as PickleGlobal)?.global !== "torch.FloatStorage") {
        throw new PthError(`refused storage type ${JSON.stringify(type)}: only float32 is read`);
      }
      if (!Number.isSafeInteger(numel) || (numel as number) < 0) {
        throw new PthError(`storage ${key} has a bad length`);
      }
      storages.set(key, numel as number);
      return { storage: key, numel: numel as number };
    },
    call(callable: PickleGlobal, args: PickleValue[]): PickleValue {
      switch (callable.global) {
        case "collections.OrderedDict":
          if (args.length !== 0) throw new PthError("an OrderedDict built from arguments");
          return new Map();
        case "torch._utils._rebuild_parameter":
          return args[0];
        case "torch._utils._rebuild_tensor_v2":
          return tensorRef(args);
        default:
          throw new PthError(`refused call of ${callable.global}`);
      }
    },
  };
}

function tensorRef([storage, offset, size, stride]: PickleValue[]): PickleValue {
  const ints = (v: PickleValue) =>
    Array.isArray(v) && v.every((n) => Number.isSafeInteger(n) && (n as number) >= 0);
  if (
    typeof storage !== "object" || storage === null || !("storage" in storage) ||
    !Number.isSafeInteger(offset) || !ints(size) || !ints(stride) ||
    (size as number[]).length !== (stride as number[]).length
  ) {
    throw new PthError("a tensor whose storage, offset, size or stride is malformed");
  }
  return { tensor: storage, offset, size, stride } as unknown as PickleValue;
}

/** The state_dict inside what the pickle held. */
function stateDict(value: PickleValue): Map<string, TensorRef> {
  let dict = value;
  for (const key of ["state_dict", "model"]) {
    if (dict instanceof Map && dict.get(key) instanceof Map) dict = dict.get(key)!;
  }
  if (!(dict instanceof Map)) throw new PthError("the file does not hold a state_dict");
  const out = new Map<string, TensorRef>();
  for (const [name, t] of dict) {
    if (typeof name !== "string" || typeof t !== "object" || t === null || !("tensor" in t)) {
      throw new PthError(`entry ${String(name)} is not a float32 tensor`);
    }
    out.set(name, t as unknown as TensorRef);
  }
  return out;
}

/** Copies each tensor out of its storage (float32 little-endian), checking every bound. */
function tensors(
  refs: Map<string, TensorRef>,
  storage: (key: string) => Uint8Array,
  limit: number,
) {
  const out = new Map<string, NamedTensor>();
  for (const [name, t] of refs) {
    const bytes = storage(t.tensor.storage);
    if (bytes.length < 4 * t.tensor.numel) {
      throw new PthError(
        `storage ${t.tensor.storage} is shorter than its ${t.tensor.numel} floats`,
      );
    }
    const count = t.size.reduce((a, b) => a * b, 1);
    if (4 * count > limit) throw new PthError(`tensor ${name} is larger than the file`);
    const last = t.offset + t.size.reduce((a, n, i) => a + (n > 0 ? (n - 1) * t.stride[i] : 0), 0);
    if (count > 0 && last >= t.tensor.numel) {
      throw new PthError(`tensor ${name} reaches past the end of its storage`);
    }
    out.set(name, { shape: [...t.size], data: gather(bytes, t, count) });
  }
  return out;
}

/** A tensor's elements in row-major order: one copy where it is contiguous, else element by element. */
function gather(bytes: Uint8Array, t: TensorRef, count: number): Float32Array {
  let contiguous = true;
  for (let d = t.size.length - 1, step = 1; d >= 0; step *= t.size[d], d--) {
    if (t.size[d] !== 1 && t.stride[d] !== step) contiguous = false;
  }
  if (contiguous) {
    const start = bytes.byteOffset + 4 * t.offset;
    return new Float32Array(bytes.buffer.slice(start, start + 4 * count));
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const data = new Float32Array(count), index = new Array(t.size.length).fill(0);
  for (let i = 0; i < count; i++) {
    let at = t.offset;
    for (let d = 0; d < index.length; d++) at += index[d] * t.stride[d];
    data[i] = view.getFloat32(4 * at, true);
    for (let d = index.length - 1; d >= 0 && ++index[d] === t.size[d]; d--) index[d] = 0;
  }
  return data;
}

function fromZip(bytes: Uint8Array): Map<string, NamedTensor> {
  const entries = zipEntries(bytes);
  const pkl = [...entries.keys()].find((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (!pkl) throw new PthError("the archive has no data.pkl");
  const root = pkl.slice(0, -"data.pkl".length);
  const storages = new Map<string, number>();
  const { value } = readPickle(entries.get(pkl)!, 0, rules(storages));
  return tensors(stateDict(value), (key) => {
    const entry = entries.get(`${root}data/${key}`);
    if (!entry) throw new PthError(`the archive has no storage ${key}`);
    return entry;
  }, bytes.length);
}

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;

function fromLegacy(bytes: Uint8Array): Map<string, NamedTensor> {
  const none = { globals: new Set<string>(), call: () => null, persistent: () => null };
  const magic = readPickle(bytes, 0, none);
  if (magic.value !== LEGACY_MAGIC) throw new PthError("not a PyTorch file (no magic number)");
  const protocol = readPickle(bytes, magic.end, none);
  if (protocol.value !== 1001) throw new PthError(`legacy protocol ${protocol.value} refused`);
  const info = readPickle(bytes, protocol.end, none);
  const storages = new Map<string, number>();
  const main = readPickle(bytes, info.end, rules(storages));
  const keys = readPickle(bytes, main.end, none);
  if (!Array.isArray(keys.value) || !keys.value.every((k) => typeof k === "string")) {
    throw new PthError("the list of storages is malformed");
  }
  const data = new Map<string, Uint8Array>();
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = keys.end;
  for (const key of keys.value as string[]) {
    if (at + 8 > bytes.length) throw new PthError(`the file ends before storage ${key}`);
    const count = Number(view.getBigInt64(at, true));
    if (count < 0 || at + 8 + 4 * count > bytes.length) {
      throw new PthError(`storage ${key} is shorter than its ${count} floats`);
    }
    data.set(key, bytes.subarray(at + 8, at + 8 + 4 * count));
    at += 8 + 4 * count;
  }
  return tensors(stateDict(main.value), (key) => {
    const entry = data.get(key);
    if (!entry) throw new PthError(`the file has no storage ${key}`);
    return entry;
  }, bytes.length);
}

/** The stored (uncompressed) entries of a zip archive by name, from its central directory. */
function zipEntries(bytes: Uint8Array): Map<string, Uint8Array> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let end = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 65535); i--) {
    if (view.getUint32(i, true) === 0x06054b50) {
      end = i;
      break;
    }
  }
  if (end < 0) throw new PthError("the archive is truncated (no end of central directory)");
  const count = view.getUint16(end + 10, true);
  let at = view.getUint32(end + 16, true);
  const entries = new Map<string, Uint8Array>();
  for (let n = 0; n < count; n++) {
    if (at + 46 > end || view.getUint32(at, true) !== 0x02014b50) {
      throw new PthError("the archive's central directory is damaged");
    }
    const at0 = at, method = view.getUint16(at + 10, true), size = view.getUint32(at + 20, true);
    const nameLength = view.getUint16(at + 28, true);
    const extra = view.getUint16(at + 30, true), comment = view.getUint16(at + 32, true);
    const local = view.getUint32(at + 42, true);
    const name = new TextDecoder().decode(bytes.subarray(at + 46, at + 46 + nameLength));
    at += 46 + nameLength + extra + comment;
    if (name.startsWith("/") || name.includes("\\") || name.split("/").includes("..")) {
      throw new PthError(`refused entry ${JSON.stringify(name)}: it escapes its folder`);
    }
    if (size === 0xffffffff || local === 0xffffffff) {
      throw new PthError(`entry ${name} needs zip64, which this reader refuses`);
    }
    if (local + 30 > bytes.length || view.getUint32(local, true) !== 0x04034b50) {
      throw new PthError(`entry ${name}'s header is damaged`);
    }
    const start = local + 30 + view.getUint16(local + 26, true) + view.getUint16(local + 28, true);
    if (start + size > bytes.length) throw new PthError(`the archive is truncated (in ${name})`);
    if (method !== 0) throw new PthError(`entry ${name} is compressed (method ${method}), refused`);
    const data = bytes.subarray(start, start + size);
    if (crc32(data) !== view.getUint32(at0 + 16, true)) {
      throw new PthError(`entry ${name} is damaged (its CRC-32 does not match)`);
    }
    entries.set(name, data);
  }
  return entries;
}

let crcTable: Uint32Array | undefined;

/** The CRC-32 (the zip format's, polynomial 0xEDB88320) of `bytes`. */
function crc32(bytes: Uint8Array): number {
  crcTable ??= Uint32Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
