/**
 * JSON.parse takes the last of duplicate keys; other parsers take the first. A body such as
 * `{"method":"tools/call","params":{"name":"safe","name":"secret"}}` could then mean one thing
 * to our policy and another to the upstream. So a body with a duplicate key anywhere is refused.
 *
 * This scan runs only after JSON.parse accepted the text, so it can assume well-formed JSON and
 * only needs to find object keys: a single linear pass, allocating only for keys.
 */
export function findDuplicateKey(text: string): string | undefined {
  const stack: (SeenKeys | null)[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 0x22 /* " */) {
      const end = endOfString(text, i);
      if (expectKey) {
        const raw = text.slice(i + 1, end);
        // Escapes must be decoded before comparing: "a" and "\u0061" are the same key.
        const key = raw.includes('\\') ? (JSON.parse(`"${raw}"`) as string) : raw;
        const top = stack.length - 1;
        const keys = stack[top]!;
        if (Array.isArray(keys)) {
          if (keys.includes(key)) return key;
          keys.push(key);
          if (keys.length > SMALL_OBJECT_KEYS) stack[top] = new Set(keys);
        } else {
          if (keys.has(key)) return key;
          keys.add(key);
        }
        expectKey = false;
      }
      i = end;
    } else if (ch === 0x7b /* { */) {
      stack.push([]);
      expectKey = true;
    } else if (ch === 0x5b /* [ */) {
      stack.push(null);
    } else if (ch === 0x7d /* } */ || ch === 0x5d /* ] */) {
      stack.pop();
    } else if (ch === 0x2c /* , */) {
      expectKey = stack[stack.length - 1] != null;
    }
  }
  return undefined;
}

/**
 * The keys one object has shown so far. Most objects in a message have a handful: a short array
 * searched in order, with no Set to build and no fresh key string to hash (most of 3.3k of the
 * gateway's 388k instructions per small call, `npm run bench:instructions`). Past
 * SMALL_OBJECT_KEYS they move to a Set, so that an object of many thousand keys is still scanned
 * in linear time, not quadratic.
 */
type SeenKeys = string[] | Set<string>;
const SMALL_OBJECT_KEYS = 8;

/** Index of the closing quote of the string that opens at `start`. */
function endOfString(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 0x5c /* \ */) i++;
    else if (ch === 0x22) return i;
  }
  return text.length;
}
