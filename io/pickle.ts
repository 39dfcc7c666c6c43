/**
 * A pickle reader that never executes the pickle: it interprets only the opcodes a PyTorch
 * state_dict uses and builds plain values, and a global outside an allow-list is refused by name
 * (the idea of PyTorch's `weights_only=True`). `pth.ts` gives it the allowed calls.
 *
 * @module
 */

/** A file this reader refuses, with what was refused. */
export class PickleError extends Error {
  /**
   * An error with `message`.
   *
   * @example
   * ```ts
   * import { PickleError } from "./pickle.ts";
   * console.log(new PickleError("truncated").name); // "PickleError"
   * ```
   */
  constructor(message: string) {
    super(message);
    this.name = "PickleError";
  }
}

/** A global the pickle named (`module.name`), allowed by the caller. */
export interface PickleGlobal {
  readonly global: string;
}

/** What the pickle's values are: plain data, allowed globals and what their calls returned. */
export type PickleValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PickleValue[]
  | Map<PickleValue, PickleValue>
  | PickleGlobal
  | { readonly [key: string]: unknown };

/** What the caller allows: the globals, what calling one returns, and persistent ids. */
export interface PickleRules {
  /** The globals that may appear, as "module.name". */
  globals: ReadonlySet<string>;
  /** The value of `callable(...args)` for an allowed global (REDUCE). */
  call(callable: PickleGlobal, args: PickleValue[]): PickleValue;
  /** The object a persistent id stands for (BINPERSID). */
  persistent(id: PickleValue): PickleValue;
}

const MARK = Symbol("mark");
type Slot = PickleValue | typeof MARK;

/** The pickle machine's state: the bytes and where it reads, its stack, its memo, the rules. */
class Machine {
  readonly stack: Slot[] = [];
  readonly memo = new Map<number, PickleValue>();
  readonly view: DataView;
  at: number;

  constructor(readonly bytes: Uint8Array, offset: number, readonly rules: PickleRules) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.at = offset;
  }

  /** Consumes `n` bytes and returns where they start. */
  take(n: number): number {
    if (this.at + n > this.bytes.length) throw new PickleError("the pickle is truncated");
    return (this.at += n) - n;
  }

  byte(): number {
    return this.bytes[this.take(1)];
  }

  uint32(): number {
    return this.view.getUint32(this.take(4), true);
  }

  push(v: PickleValue): void {
    this.stack.push(v);
  }

  pop(): PickleValue {
    const v = this.stack.pop();
    if (v === undefined || v === MARK) throw new PickleError("the pickle's stack is malformed");
    return v;
  }

  top(): PickleValue {
    const v = this.stack.at(-1);
    if (v === undefined || v === MARK) throw new PickleError("the pickle's stack is malformed");
    return v;
  }

  /** The items pushed since the last mark, which goes. */
  popMark(): PickleValue[] {
    const i = this.stack.lastIndexOf(MARK);
    if (i < 0) throw new PickleError("the pickle's stack has no mark");
    return this.stack.splice(i).slice(1) as PickleValue[];
  }

  text(n: number): string {
    const start = this.take(n);
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(this.bytes.subarray(start, this.at));
    } catch {
      throw new PickleError(`a string that is not UTF-8 at byte ${start}`);
    }
  }

  /** A newline-ended name (GLOBAL's operands). */
  line(): string {
    const end = this.bytes.indexOf(0x0a, this.at);
    if (end < 0 || end - this.at > 256) throw new PickleError("the pickle is truncated");
    return this.text(end - this.at + 1).slice(0, -1);
  }

  global(module: PickleValue, name: PickleValue): PickleGlobal {
    if (typeof module !== "string" || typeof name !== "string") {
      throw new PickleError("a global whose name is not a string");
    }
    const full = `${module}.${name}`;
    if (!this.rules.globals.has(full)) throw new PickleError(`refused global ${full}`);
    return { global: full };
  }

  recall(key: number): PickleValue {
    if (!this.memo.has(key)) {
      throw new PickleError(`the pickle reads memo ${key} before writing it`);
    }
    return this.memo.get(key)!;
  }

  reduce(args: PickleValue, callable: PickleValue): PickleValue {
    if (!isGlobal(callable) || !Array.isArray(args)) {
      throw new PickleError("REDUCE of something that is not an allowed call");
    }
    return this.rules.call(callable, args);
  }

  /** BUILD: a state_dict's `_metadata` attribute, kept as nothing. */
  build(state: PickleValue): void {
    if (!(this.top() instanceof Map) || !(state instanceof Map || state === null)) {
      throw new PickleError("BUILD of something that is not a dict's attributes");
    }
  }

  setItems(items: PickleValue[]): void {
    const target = this.top();
    if (!(target instanceof Map) || items.length % 2) {
      throw new PickleError("SETITEMS on something that is not a dict");
    }
    for (let i = 0; i < items.length; i += 2) target.set(items[i], items[i + 1]);
  }

  append(items: PickleValue[]): void {
    const target = this.top();
    if (!Array.isArray(target)) throw new PickleError("APPEND to something that is not a list");
    target.push(...items);
  }
}

/** The opcodes a state_dict uses, by byte: every other one is refused. STOP (".") ends. */
const OPCODES: Record<number, (m: Machine) => void> = {
  0x80: (m) => m.take(1), // PROTO
  0x95: (m) => m.take(8), // FRAME
  0x28: (m) => m.stack.push(MARK), // MARK
  0x7d: (m) => m.push(new Map()), // EMPTY_DICT
  0x5d: (m) => m.push([]), // EMPTY_LIST
  0x29: (m) => m.push([]), // EMPTY_TUPLE
  0x74: (m) => m.push(m.popMark()), // TUPLE
  0x85: (m) => m.push([m.pop()]), // TUPLE1
  0x86: (m) => m.push([m.pop(), m.pop()].reverse()), // TUPLE2
  0x87: (m) => m.push([m.pop(), m.pop(), m.pop()].reverse()), // TUPLE3
  0x4e: (m) => m.push(null), // NONE
  0x88: (m) => m.push(true), // NEWTRUE
  0x89: (m) => m.push(false), // NEWFALSE
  0x4b: (m) => m.push(m.byte()), // BININT1
  0x4d: (m) => m.push(m.view.getUint16(m.take(2), true)), // BININT2
  0x4a: (m) => m.push(m.view.getInt32(m.take(4), true)), // BININT
  0x8a: (m) => m.push(long(m.bytes.subarray(m.take(m.byte()), m.at))), // LONG1
  0x47: (m) => m.push(m.view.getFloat64(m.take(8), false)), // BINFLOAT
  0x58: (m) => m.push(m.text(m.uint32())), // BINUNICODE
  0x8c: (m) => m.push(m.text(m.byte())), // SHORT_BINUNICODE
  0x43: (m) => m.push(m.bytes.slice(m.take(m.byte()), m.at)), // SHORT_BINBYTES
  0x63: (m) => m.push(m.global(m.line(), m.line())), // GLOBAL
  0x93: (m) => m.push(m.global(...[m.pop(), m.pop()].reverse() as [PickleValue, PickleValue])), // STACK_GLOBAL
  0x71: (m) => m.memo.set(m.byte(), m.top()), // BINPUT
  0x72: (m) => m.memo.set(m.uint32(), m.top()), // LONG_BINPUT
  0x94: (m) => m.memo.set(m.memo.size, m.top()), // MEMOIZE
  0x68: (m) => m.push(m.recall(m.byte())), // BINGET
  0x6a: (m) => m.push(m.recall(m.uint32())), // LONG_BINGET
  0x51: (m) => m.push(m.rules.persistent(m.pop())), // BINPERSID
  0x52: (m) => m.push(m.reduce(m.pop(), m.pop())), // REDUCE: args, then the callable
  0x62: (m) => m.build(m.pop()), // BUILD
  0x73: (m) => m.setItems([m.pop(), m.pop()].reverse()), // SETITEM
  0x75: (m) => m.setItems(m.popMark()), // SETITEMS
  0x61: (m) => m.append([m.pop()]), // APPEND
  0x65: (m) => m.append(m.popMark()), // APPENDS
};

/**
 * Reads one pickle from `bytes` at `offset` under `rules`; returns its value and where it ended.
 *
 * @example
 * ```ts
 * import { readPickle } from "./pickle.ts";
 * const rules = { globals: new Set<string>(), call: () => null, persistent: () => null };
 * // PROTO 2, EMPTY_LIST, BININT1 7, APPEND, STOP
 * const bytes = new Uint8Array([0x80, 2, 0x5d, 0x4b, 7, 0x61, 0x2e]);
 * console.log(readPickle(bytes, 0, rules).value); // [7]
 * ```
 */
export function readPickle(
  bytes: Uint8Array,
  offset: number,
  rules: PickleRules,
): { value: PickleValue; end: number } {
  const m = new Machine(bytes, offset, rules);
  for (let op = m.byte(); op !== 0x2e; op = m.byte()) {
    const run = OPCODES[op];
    if (!run) {
      const hex = op.toString(16).padStart(2, "0");
      throw new PickleError(`refused opcode 0x${hex} at byte ${m.at - 1}`);
    }
    run(m);
  }
  return { value: m.pop(), end: m.at };
}

function isGlobal(v: PickleValue): v is PickleGlobal {
  return typeof v === "object" && v !== null && "global" in v && typeof v.global === "string";
}

/** A little-endian two's-complement integer: a number where it is exact, else a bigint. */
function long(b: Uint8Array): number | bigint {
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
  if (b.length > 0 && b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(v)
    : v;
}
