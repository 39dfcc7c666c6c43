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
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: Slot[] = [], memo = new Map<number, PickleValue>();
  let at = offset;
  const need = (n: number) => {
    if (at + n > bytes.length) throw new PickleError("the pickle is truncated");
    const start = at;
    at += n;
    return start;
  };
  const pop = (): PickleValue => {
    const v = stack.pop();
    if (v === undefined || v === MARK) throw new PickleError("the pickle's stack is malformed");
    return v;
  };
  const popMark = (): PickleValue[] => {
    const i = stack.lastIndexOf(MARK);
    if (i < 0) throw new PickleError("the pickle's stack has no mark");
    const items = stack.splice(i) as PickleValue[];
    items.shift();
    return items;
  };
  const top = (): PickleValue => {
    const v = stack.at(-1);
    if (v === undefined || v === MARK) throw new PickleError("the pickle's stack is malformed");
    return v;
  };
  const text = (n: number) => {
    const raw = bytes.subarray(need(n), at);
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(raw);
    } catch {
      throw new PickleError(`a string that is not UTF-8 at byte ${at - n}`);
    }
  };
  const global = (module: string, name: string): PickleGlobal => {
    const full = `${module}.${name}`;
    if (!rules.globals.has(full)) throw new PickleError(`refused global ${full}`);
    return { global: full };
  };
  const setItems = (target: PickleValue, items: PickleValue[]) => {
    if (!(target instanceof Map) || items.length % 2) {
      throw new PickleError("SETITEMS on something that is not a dict");
    }
    for (let i = 0; i < items.length; i += 2) target.set(items[i], items[i + 1]);
  };
  while (true) {
    const op = bytes[need(1)];
    switch (op) {
      case 0x80:
        need(1);
        break; // PROTO
      case 0x95:
        need(8);
        break; // FRAME
      case 0x2e:
        return { value: pop(), end: at }; // STOP
      case 0x28:
        stack.push(MARK);
        break; // MARK
      case 0x7d:
        stack.push(new Map());
        break; // EMPTY_DICT
      case 0x5d:
        stack.push([]);
        break; // EMPTY_LIST
      case 0x29:
        stack.push([]);
        break; // EMPTY_TUPLE
      case 0x74:
        stack.push(popMark());
        break; // TUPLE
      case 0x85:
        stack.push([pop()]);
        break; // TUPLE1
      case 0x86: {
        const b = pop(), a = pop();
        stack.push([a, b]);
        break;
      } // TUPLE2
      case 0x87: {
        const c = pop(), b = pop(), a = pop();
        stack.push([a, b, c]);
        break;
      } // TUPLE3
      case 0x4e:
        stack.push(null);
        break; // NONE
      case 0x88:
        stack.push(true);
        break; // NEWTRUE
      case 0x89:
        stack.push(false);
        break; // NEWFALSE
      case 0x4b:
        stack.push(bytes[need(1)]);
        break; // BININT1
      case 0x4d:
        stack.push(view.getUint16(need(2), true));
        break; // BININT2
      case 0x4a:
        stack.push(view.getInt32(need(4), true));
        break; // BININT
      case 0x8a:
        stack.push(long(bytes.subarray(need(bytes[need(1)]), at)));
        break; // LONG1
      case 0x47:
        stack.push(view.getFloat64(need(8), false));
        break; // BINFLOAT
      case 0x58:
        stack.push(text(view.getUint32(need(4), true)));
        break; // BINUNICODE
      case 0x8c:
        stack.push(text(bytes[need(1)]));
        break; // SHORT_BINUNICODE
      case 0x43:
        stack.push(bytes.slice(need(bytes[need(1)]), at));
        break; // SHORT_BINBYTES
      case 0x63: { // GLOBAL "module\nname\n"
        const line = () => {
          const end = bytes.indexOf(0x0a, at);
          if (end < 0 || end - at > 256) throw new PickleError("the pickle is truncated");
          return text(end - at + 1).slice(0, -1);
        };
        const module = line();
        stack.push(global(module, line()));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop(), module = pop();
        if (typeof module !== "string" || typeof name !== "string") {
          throw new PickleError("STACK_GLOBAL of something that is not a name");
        }
        stack.push(global(module, name));
        break;
      }
      case 0x71:
        memo.set(bytes[need(1)], top());
        break; // BINPUT
      case 0x72:
        memo.set(view.getUint32(need(4), true), top());
        break; // LONG_BINPUT
      case 0x94:
        memo.set(memo.size, top());
        break; // MEMOIZE
      case 0x68:
      case 0x6a: { // BINGET, LONG_BINGET
        const key = op === 0x68 ? bytes[need(1)] : view.getUint32(need(4), true);
        if (!memo.has(key)) throw new PickleError(`the pickle reads memo ${key} before writing it`);
        stack.push(memo.get(key)!);
        break;
      }
      case 0x51:
        stack.push(rules.persistent(pop()));
        break; // BINPERSID
      case 0x52: { // REDUCE
        const args = pop(), callable = pop();
        if (!isGlobal(callable) || !Array.isArray(args)) {
          throw new PickleError("REDUCE of something that is not an allowed call");
        }
        stack.push(rules.call(callable, args));
        break;
      }
      case 0x62: { // BUILD: a state_dict's `_metadata` attribute, kept as nothing
        const state = pop();
        if (!(top() instanceof Map) || !(state instanceof Map || state === null)) {
          throw new PickleError("BUILD of something that is not a dict's attributes");
        }
        break;
      }
      case 0x73: {
        const v = pop(), k = pop();
        setItems(top(), [k, v]);
        break;
      } // SETITEM
      case 0x75: {
        const items = popMark();
        setItems(top(), items);
        break;
      } // SETITEMS
      case 0x61: {
        const v = pop();
        appendTo(top(), [v]);
        break;
      } // APPEND
      case 0x65: {
        const items = popMark();
        appendTo(top(), items);
        break;
      } // APPENDS
      default:
        throw new PickleError(
          `refused opcode 0x${op.toString(16).padStart(2, "0")} at byte ${at - 1}`,
        );
    }
  }
}

function isGlobal(v: PickleValue): v is PickleGlobal {
  return typeof v === "object" && v !== null && "global" in v && typeof v.global === "string";
}

function appendTo(target: PickleValue, items: PickleValue[]): void {
  if (!Array.isArray(target)) throw new PickleError("APPEND to something that is not a list");
  target.push(...items);
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
