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

/** Code points of a string (a UTF-16 surrogate pair is one). */
function codePoints(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xdc00 || c > 0xdfff) n++;
  }
  return n;
}

/**
 * A model's vocabulary and its tokenisation: answers the share of a text's tokens that the model
 * has never seen (out-of-vocabulary), a sign of texts unlike its training data.
 */
export class Vocabulary {
  private readonly pattern: RegExp;

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

  /** Tokens of a text, as the model sees them (lowercased when it lowercases). */
  tokenize(text: string): string[] {
    const out: string[] = [];
    this.forEachToken(text, (token) => out.push(token));
    return out;
  }

  /** Share of the text's tokens not in the vocabulary; 0 when it has no token. */
  oovShare(text: string): number {
    let total = 0;
    let unknown = 0;
    this.forEachToken(text, (token) => {
      total++;
      if (!this.tokens.has(token)) unknown++;
    });
    return total === 0 ? 0 : unknown / total;
  }

  private forEachToken(text: string, visit: (token: string) => void): void {
    const s = this.tokenizer.lowercase ? text.toLowerCase() : text;
    const min = this.tokenizer.minLength;
    const re = this.pattern;
    re.lastIndex = 0;
    let match: RegExpExecArray | null;
    while ((match = re.exec(s)) !== null) {
      const token = match[0];
      if (token.length === 0) {
        re.lastIndex++; // a pattern that matches nothing must not loop forever
        continue;
      }
      // length counts UTF-16 units; only a token short enough to be mostly surrogates needs counting
      if (token.length < min || (token.length < 2 * min && codePoints(token) < min)) continue;
      visit(token);
    }
  }
}
