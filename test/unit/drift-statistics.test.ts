import { DEFAULT_TOKENIZER, Vocabulary, measureChunk, predictionPlan, predictionValues, statisticsPlan } from '@onnx-batch/shared';
import type { ModelManifest } from '@onnx-batch/contracts';
import type { OutputData } from '@onnx-batch/shared';
import { loadGolden } from '../helpers/golden';
import {
  floatTensorManifest,
  grid,
  imageManifest,
  int64Manifest,
  multiInputManifest,
  realManifest,
  storedChunk,
  textManifest,
} from './fixtures';

function measured(manifest: ModelManifest, rows: unknown[], vocabulary?: Vocabulary): Record<string, number[]> {
  const plan = statisticsPlan(manifest, vocabulary);
  const values = measureChunk(plan, storedChunk(manifest, rows));
  return Object.fromEntries(plan.map((p, i) => [p.name, Array.from(values[i] ?? [])]));
}

describe('statisticsPlan', () => {
  it('when a manifest has number features in one float32 input, then each is a float32 value statistic at its offset', () => {
    // Act
    const plan = statisticsPlan(realManifest('iris', '2'));

    // Assert
    expect(plan.map((p) => [p.name, p.feature, p.measure, p.input, p.perRow, p.offset, p.size, p.float32])).toEqual([
      ['sepal_length', 'sepal_length', 'value', 'input', 4, 0, 1, true],
      ['sepal_width', 'sepal_width', 'value', 'input', 4, 1, 1, true],
      ['petal_length', 'petal_length', 'value', 'input', 4, 2, 1, true],
      ['petal_width', 'petal_width', 'value', 'input', 4, 3, 1, true],
    ]);
  });

  it('when a manifest has string, number and tensor features in several inputs, then each is found in its own section', () => {
    // Act
    const plan = statisticsPlan(multiInputManifest(), new Vocabulary(new Set(['hello']), DEFAULT_TOKENIZER));

    // Assert
    expect(plan.map((p) => [p.name, p.measure, p.input, p.perRow, p.offset, p.size])).toEqual([
      ['title.length', 'length', 'title', 1, 0, 1],
      ['title.oov', 'oov', 'title', 1, 0, 1],
      ['x', 'value', 'xy', 2, 0, 1],
      ['y', 'value', 'xy', 2, 1, 1],
      ['patch.mean', 'mean', 'patch', 4, 0, 4],
      ['patch.std', 'std', 'patch', 4, 0, 4],
    ]);
  });

  it('when a string feature has no vocabulary, then it has a length statistic only', () => {
    expect(statisticsPlan(textManifest()).map((p) => p.name)).toEqual(['text.length']);
  });

  it('when integers are stored as float64 (int64 input), then their values are not float32', () => {
    expect(statisticsPlan(int64Manifest()).map((p) => p.float32)).toEqual([false, false]);
  });
});

describe('measureChunk', () => {
  it('when iris rows are measured, then each value is the feature as the codec stores it (float32)', () => {
    // Arrange
    const rows = [[5.1, 3.5, 1.4, 0.2], { sepal_length: 6.3, sepal_width: 2.9, petal_length: 5.6, petal_width: 1.8 }];

    // Act
    const values = measured(realManifest('iris', '2'), rows);

    // Assert
    expect(values).toEqual({
      sepal_length: [Math.fround(5.1), Math.fround(6.3)],
      sepal_width: [Math.fround(3.5), Math.fround(2.9)],
      petal_length: [Math.fround(1.4), Math.fround(5.6)],
      petal_width: [Math.fround(0.2), Math.fround(1.8)],
    });
  });

  it('when images come as base64 or nested arrays, then mean and population std of their pixels are measured alike', () => {
    // Arrange: half the pixels 0 and half 255 → mean 127.5, std 127.5; a flat 7 → mean 7, std 0
    const halves = grid(28, 28, (r) => (r < 14 ? 0 : 255));
    const flat = grid(28, 28, () => 7);
    const base64 = (image: number[][]): string => Buffer.from(image.flat()).toString('base64');

    // Act
    const values = measured(imageManifest(), [{ image: halves }, { image: base64(halves) }, { image: flat }, [base64(flat)]]);

    // Assert
    expect(values['image.mean']).toEqual([127.5, 127.5, 7, 7]);
    expect(values['image.std']).toEqual([127.5, 127.5, 0, 0]);
  });

  it('when a float tensor has uneven values, then mean and std are the hand-computed ones', () => {
    // Arrange: [1, 2, 3, 4, 5, 6] → mean 3.5, variance 17.5/6
    const rows = [
      {
        grid: [
          [1, 2, 3],
          [4, 5, 6],
        ],
      },
      {
        grid: [
          [1e9 + 1, 1e9 + 2, 1e9 + 3],
          [1e9 + 4, 1e9 + 5, 1e9 + 6],
        ],
      },
    ];

    // Act
    const values = measured(floatTensorManifest(), rows);

    // Assert: the shifted one-pass sums keep the std of large values exact
    expect(values['grid.mean']?.[0]).toBeCloseTo(3.5, 12);
    expect(values['grid.std']?.[0]).toBeCloseTo(Math.sqrt(17.5 / 6), 12);
    expect(values['grid.std']?.[1]).toBeCloseTo(Math.sqrt(17.5 / 6), 9);
  });

  it('when texts are measured with a vocabulary, then length is in UTF-16 units and oov is the share of unknown tokens', () => {
    // Arrange
    const vocabulary = new Vocabulary(new Set(['free', 'été']), DEFAULT_TOKENIZER);
    const rows = [
      { text: 'Free money, FREE!' }, // free, money, free → 1 of 3 unknown
      { text: 'a b c' }, // no token of 2+ characters → 0
      { text: '' },
      { text: 'ÉTÉ été' }, // lowercased, both known
      { text: '𝐀 𝐀𝐀 x' }, // one code point (2 UTF-16 units) is too short; 𝐀𝐀 counts, unknown
      { text: 'free\0cash' }, // NUL becomes a space in the codec: free, cash
    ];

    // Act
    const values = measured(textManifest(100), rows, vocabulary);

    // Assert
    expect(values['text.length']).toEqual([17, 5, 0, 7, 9, 9]);
    expect(values['text.oov']).toEqual([1 / 3, 0, 0, 0, 1, 0.5]);
  });

  it('when a vocabulary tokenises, then it follows the model graph: lowercase, [\\p{L}\\p{N}_]+, 2+ characters', () => {
    const vocabulary = new Vocabulary(new Set(), DEFAULT_TOKENIZER);
    expect(vocabulary.tokenize('Hello, WORLD_42! a I x9 naïve\tΣίσυφος 中文')).toEqual([
      'hello',
      'world_42',
      'x9',
      'naïve',
      'σίσυφος',
      '中文',
    ]);
  });

  it('when the tokenizer is not lowercasing and asks for 3+ characters, then it says so', () => {
    const vocabulary = new Vocabulary(new Set(['Hello']), { tokenPattern: '[a-zA-Z]+', minLength: 3, lowercase: false });
    expect(vocabulary.tokenize('Hello to you')).toEqual(['Hello', 'you']);
    expect(vocabulary.oovShare('Hello to you')).toBe(0.5);
  });

  it('when oovShare scans with its lookup table, then it finds what the regular expression finds', () => {
    // Arrange: the spam golden messages plus random strings mixing ASCII, Latin, Greek, CJK, emoji, astral letters and lone surrogates
    const vocabulary = new Vocabulary(new Set(['the', 'free', 'été', '𝐀𝐀', '中文', 'σίσυφος', 'x9']), DEFAULT_TOKENIZER);
    const alphabet = [
      'a',
      'B',
      'x9',
      ' ',
      '\t',
      '_',
      'É',
      'é',
      'İ',
      'Σ',
      'ς',
      '中',
      '文',
      '🎉',
      '𝐀',
      '\ud800',
      '\udc00',
      '-',
      '1',
      'the',
      'free',
    ];
    let seed = 7;
    const random = (): number => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    const texts = [
      ...loadGolden('spam', '1').inputs.map((r) => String(r.text)),
      ...Array.from({ length: 500 }, () =>
        Array.from({ length: Math.floor(random() * 12) }, () => alphabet[Math.floor(random() * alphabet.length)]).join(''),
      ),
    ];
    const byRegex = (text: string): number => {
      const tokens = vocabulary.tokenize(text);
      return tokens.length === 0 ? 0 : tokens.filter((t) => !vocabulary.tokens.has(t)).length / tokens.length;
    };

    // Act
    const mismatches = texts.filter((text) => vocabulary.oovShare(text) !== byRegex(text));

    // Assert
    expect(mismatches).toEqual([]);
  });

  it('when a token pattern is not one repeated class, then the regular expression itself tokenises', () => {
    const vocabulary = new Vocabulary(new Set(["don't"]), { tokenPattern: "[a-z]+(?:'[a-z]+)?", minLength: 2, lowercase: true });
    expect(vocabulary.tokenize("Don't stop")).toEqual(["don't", 'stop']);
    expect(vocabulary.oovShare("Don't stop")).toBe(0.5);
  });

  it('when a token pattern is invalid, then the vocabulary refuses it', () => {
    expect(() => new Vocabulary(new Set(), { tokenPattern: '[', minLength: 2, lowercase: true })).toThrow(
      'tokenPattern is not a valid regular expression',
    );
  });

  it('when a plan misses its chunk section, then it throws naming the input', () => {
    const plan = statisticsPlan(realManifest('iris', '2'));
    expect(() => measureChunk(plan, { rows: 1, inputs: new Map(), ids: null, passthrough: null })).toThrow(
      'chunk has no data for input input',
    );
  });
});

describe('predictionValues', () => {
  const probabilities = (rows: number[][]): OutputData => ({
    data: Float32Array.from(rows.flat()),
    dims: [rows.length, rows[0]?.length ?? 0],
  });

  it('when a classifier answers probabilities, then each row is the argmax label index (the first of equal ones)', () => {
    // Arrange
    const manifest = realManifest('iris', '2');
    const outputs = new Map([
      [
        'probabilities',
        probabilities([
          [0.1, 0.7, 0.2],
          [0.5, 0.5, 0],
          [0, 0.2, 0.8],
          [0.9, 0.05, 0.05],
        ]),
      ],
    ]);

    // Act
    const all = predictionValues(manifest, outputs, 0, 4);
    const lastTwo = predictionValues(manifest, outputs, 2, 2);

    // Assert
    expect(Array.from(all)).toEqual([1, 0, 2, 0]);
    expect(Array.from(lastTwo)).toEqual([2, 0]);
    expect(predictionPlan(manifest)).toEqual({
      kind: 'label',
      output: 'probabilities',
      labels: ['setosa', 'versicolor', 'virginica'],
      float32: false,
    });
  });

  it('when a regression has several targets, then each row is the first target', () => {
    // Arrange
    const manifest = int64Manifest();
    const outputs = new Map([['y', { data: Float32Array.from([1.5, 10, 2.5, 20]), dims: [2, 2] }]]);

    // Act
    const values = predictionValues(manifest, outputs, 0, 2);

    // Assert
    expect(Array.from(values)).toEqual([1.5, 2.5]);
    expect(predictionPlan(manifest)).toEqual({ kind: 'value', output: 'y', float32: true });
  });

  it('when a regression output is int64, then BigInt values become numbers', () => {
    const manifest: ModelManifest = {
      ...int64Manifest(),
      outputs: [{ name: 'y', dtype: 'int64', shape: [-1] }],
      result: { kind: 'regression', output: 'y' },
    };
    const outputs = new Map([['y', { data: BigInt64Array.from([3n, -4n]), dims: [2] }]]);
    expect(Array.from(predictionValues(manifest, outputs, 0, 2))).toEqual([3, -4]);
  });

  it('when the model returns raw tensors, then there is no prediction statistic', () => {
    expect(predictionPlan(multiInputManifest())).toBeNull();
    expect(() => predictionValues(multiInputManifest(), new Map(), 0, 1)).toThrow('has no prediction statistic');
  });
});
