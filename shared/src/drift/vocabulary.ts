/** How a text model splits its input into tokens (what its graph does before looking them up). */
export interface TokenizerSpec {
  /** ECMAScript regular expression (compiled with the `u` flag) matching one token. */
  tokenPattern: string;
  /** Shorter tokens (in Unicode code points) are dropped, like ORT Tokenizer's `mincharnum`. */
  minLength: number;
  /** Lowercase the text first (like a StringNormalizer with case_change_action LOWER). */
  lowercase: boolean;
}

/** The spam model's tokenisation: StringNormalizer(LOWER) → Tokenizer(`[\pL\pN_]+`, mincharnum 2). */
export const DEFAULT_TOKENIZER: TokenizerSpec = Object.freeze({ tokenPattern: '[\\p{L}\\p{N}_]+', minLength: 2, lowercase: true });

/** A pattern that is one character class repeated (`[…]+`): its tokens are maximal runs of that class. */
const CLASS_RUN = /^\[(?:[^\\\]]|\\.)*\]\+$/;

/** Which UTF-16 code units (a lone surrogate counts as itself) a class-run pattern's class matches. */
interface ClassRun {
  table: Uint8Array;
  single: RegExp;
}

const classRuns = new Map<string, ClassRun | null>();

/** For `[…]+` patterns, a lookup table of the class over the BMP (built once per pattern). */
function classRunOf(pattern: string): ClassRun | null {
  let run = classRuns.get(pattern);
  if (run === undefined) {
    run = null;
    if (CLASS_RUN.test(pattern)) {
      const single = new RegExp(`^${pattern.slice(0, -1)}$`, 'u');
      const table = new Uint8Array(65536);
      for (let c = 0; c < 65536; c++) table[c] = single.test(String.fromCharCode(c)) ? 1 : 0;
      run = { table, single };
    }
    classRuns.set(pattern, run);
  }
  return run;
}

/** Code points of a string (a UTF-16 surrogate pair is one). */
function codePoints(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xdc00 || c > 0xdfff || i === 0 || !isHighSurrogate(s.charCodeAt(i - 1))) n++;
  }
  return n;
}

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}

function isLowSurrogate(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}

/** FNV-1a over UTF-16 code units, one unit at a time (the scan computes it as it goes). */
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

function fnv(s: string): number {
  let h = FNV_OFFSET;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), FNV_PRIME);
  return h >>> 0;
}

/**
 * The vocabulary as an open-addressing table of token hashes: a token found while scanning is
 * looked up by the hash computed during the scan and compared in place, without cutting it out
 * of the text as a string of its own (which cost more than the scan itself).
 */
class HashedTokens {
  private readonly slots: Int32Array;
  private readonly hashes: Uint32Array;
  private readonly tokens: string[];
  private readonly mask: number;

  constructor(tokens: ReadonlySet<string>) {
    this.tokens = [...tokens];
    let size = 16;
    while (size < this.tokens.length * 4) size *= 2; // load ≤ 1/4: probes stay short
    this.mask = size - 1;
    this.slots = new Int32Array(size).fill(-1);
    this.hashes = new Uint32Array(this.tokens.length);
    this.tokens.forEach((token, k) => {
      const h = fnv(token);
      this.hashes[k] = h;
      let j = h & this.mask;
      while (this.slots[j] !== -1) j = (j + 1) & this.mask;
      this.slots[j] = k;
    });
  }

  /** Whether s[from, to), whose hash is `h`, is a token. */
  has(s: string, from: number, to: number, h: number): boolean {
    const length = to - from;
    for (let j = h & this.mask; ; j = (j + 1) & this.mask) {
      const k = this.slots[j] as number;
      if (k === -1) return false;
      if (this.hashes[k] !== h) continue;
      const token = this.tokens[k] as string;
      if (token.length !== length) continue;
      let i = 0;
      while (i < length && token.charCodeAt(i) === s.charCodeAt(from + i)) i++;
      if (i === length) return true;
    }
  }
}

/**
 * A model's vocabulary and its tokenisation: answers the share of a text's tokens that the model
 * has never seen (out-of-vocabulary), a sign of texts unlike its training data.
 */
export class Vocabulary {
  private readonly pattern: RegExp;
  private readonly run: ClassRun | null;
  private readonly hashed: HashedTokens | null;

  constructor(
    readonly tokens: ReadonlySet<string>,
    readonly tokenizer: TokenizerSpec,
  ) {
    try {
      this.pattern = new RegExp(tokenizer.tokenPattern, 'gu');
    } catch (error) {
      throw new Error(`tokenPattern is not a valid regular expression: ${(error as Error).message}`, { cause: error });
    }
    if (!Number.isInteger(tokenizer.minLength) || tokenizer.minLength < 1) throw new Error('minLength must be a positive integer');
    this.run = classRunOf(tokenizer.tokenPattern);
    this.hashed = this.run ? new HashedTokens(tokens) : null;
  }

  /** Parses a vocabulary file: one token per line (blank lines ignored). */
  static parse(text: string, tokenizer: TokenizerSpec): Vocabulary {
    const tokens = new Set<string>();
    for (const line of text.split('\n')) {
      const token = line.trim();
      if (token !== '') tokens.add(token);
    }
    return new Vocabulary(tokens, tokenizer);
  }

  /** Tokens of a text, as the model sees them (lowercased when it lowercases), by the regular expression itself. */
  tokenize(text: string): string[] {
    const s = this.tokenizer.lowercase ? text.toLowerCase() : text;
    const min = this.tokenizer.minLength;
    const re = this.pattern;
    const out: string[] = [];
    re.lastIndex = 0;
    let match: RegExpExecArray | null;
    while ((match = re.exec(s)) !== null) {
      const token = match[0];
      if (token.length === 0) {
        re.lastIndex++; // a pattern that matches nothing must not loop forever
        continue;
      }
      if (token.length >= min && codePoints(token) >= min) out.push(token);
    }
    return out;
  }

  /**
   * Share of the text's tokens not in the vocabulary; 0 when it has no token. Runs on every row
   * of a text model: a `[…]+` pattern (the usual kind) is scanned with a lookup table instead of
   * the regular expression (about twice as fast, the same tokens), and each token is looked up by
   * a hash computed during the scan (HashedTokens) rather than as a string cut out of the text.
   */
  oovShare(text: string): number {
    if (!this.run) {
      const tokens = this.tokenize(text);
      let unknown = 0;
      for (const token of tokens) if (!this.tokens.has(token)) unknown++;
      return tokens.length === 0 ? 0 : unknown / tokens.length;
    }
    const { table, single } = this.run;
    const hashed = this.hashed as HashedTokens;
    const s = this.tokenizer.lowercase ? text.toLowerCase() : text;
    const min = this.tokenizer.minLength;
    const n = s.length;
    let total = 0;
    let unknown = 0;
    let i = 0;
    while (i < n) {
      const start = i;
      let points = 0;
      let h = FNV_OFFSET;
      while (i < n) {
        const c = s.charCodeAt(i);
        if (isHighSurrogate(c) && i + 1 < n && isLowSurrogate(s.charCodeAt(i + 1))) {
          // a code point beyond the BMP (rare): ask the class itself
          if (!single.test(s.slice(i, i + 2))) break;
          h = Math.imul(Math.imul(h ^ c, FNV_PRIME) ^ s.charCodeAt(i + 1), FNV_PRIME);
          i += 2;
        } else {
          if (table[c] === 0) break;
          h = Math.imul(h ^ c, FNV_PRIME);
          i++;
        }
        points++;
      }
      if (i === start) {
        i += isHighSurrogate(s.charCodeAt(i)) && i + 1 < n && isLowSurrogate(s.charCodeAt(i + 1)) ? 2 : 1;
        continue;
      }
      if (points >= min) {
        total++;
        if (!hashed.has(s, start, i, h >>> 0)) unknown++;
      }
    }
    return total === 0 ? 0 : unknown / total;
  }
}
