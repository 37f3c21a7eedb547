import { binCounts, binEdges, binIndex, binProportions, decileEdges, roundEdge, roundProportion } from '@onnx-batch/shared';

describe('binIndex', () => {
  const edges = [1, 2, 3];

  it('when a value lies below the first edge, then it is in bin 0', () => {
    expect(binIndex(edges, 0.5)).toBe(0);
    expect(binIndex(edges, -Infinity)).toBe(0);
  });

  it('when a value equals an edge, then it is in the bin that edge starts', () => {
    expect(binIndex(edges, 1)).toBe(1);
    expect(binIndex(edges, 2)).toBe(2);
    expect(binIndex(edges, 3)).toBe(3);
  });

  it('when a value lies between edges or past the last, then it is the number of edges below or at it', () => {
    expect(binIndex(edges, 1.5)).toBe(1);
    expect(binIndex(edges, 2.999)).toBe(2);
    expect(binIndex(edges, 1e9)).toBe(3);
  });

  it('when a value is NaN, then no edge is ≤ it and it is in bin 0', () => {
    expect(binIndex(edges, Number.NaN)).toBe(0);
  });

  it('when there is a single edge, then there are two bins', () => {
    expect([binIndex([0], -1), binIndex([0], 0), binIndex([0], 1)]).toEqual([0, 1, 1]);
  });
});

describe('decileEdges', () => {
  it('when the values are 1…10, then the deciles interpolate linearly between order statistics (numpy default)', () => {
    // Arrange: n = 10, q sits at h = 9q; q = 0.1 → 1 + 0.9 · (2 − 1) = 1.9, …, q = 0.9 → 9 + 0.1 · (10 − 9) = 9.1
    const values = [10, 9, 8, 7, 6, 5, 4, 3, 2, 1];

    // Act
    const edges = decileEdges(values);

    // Assert
    expect(edges).toEqual([1.9, 2.8, 3.7, 4.6, 5.5, 6.4, 7.3, 8.2, 9.1]);
  });

  it('when many values repeat, then duplicate edges are removed (fewer bins)', () => {
    // Arrange: eight 0s, two 1s: q ≤ 0.7 gives 0, q = 0.8 (h = 7.2) gives 0.2, q = 0.9 (h = 8.1) gives 1
    const values = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1];

    // Act
    const edges = decileEdges(values);

    // Assert
    expect(edges).toEqual([0, 0.2, 1]);
  });

  it('when every value is the same, then there is one edge', () => {
    expect(decileEdges([7, 7, 7])).toEqual([7]);
    expect(decileEdges([42])).toEqual([42]);
  });

  it('when deciles have long decimals, then they are rounded to 6 significant digits', () => {
    // n = 2: q sits at h = q, so q = 0.1 → 1/3 + 0.1 · 1/3 = 0.3666…
    expect(decileEdges([1 / 3, 2 / 3])[0]).toBe(0.366667);
    expect(roundEdge(123456.789)).toBe(123457);
    expect(roundEdge(-0)).toBe(0);
    expect(Object.is(roundEdge(-0), 0)).toBe(true);
  });

  it('when there is no value or a value is not finite, then it throws naming the value', () => {
    expect(() => decileEdges([])).toThrow('at least one value');
    expect(() => decileEdges([1, Number.NaN])).toThrow('value 1 is NaN');
    expect(() => decileEdges([Infinity])).toThrow('value 0 is Infinity');
  });
});

describe('binProportions and binCounts', () => {
  it('when values are binned, then each bin holds its share of rows, edges.length + 1 numbers summing to 1', () => {
    // Arrange
    const values = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1];
    const edges = decileEdges(values); // [0, 0.2, 1]

    // Act
    const counts = binCounts(edges, values);
    const proportions = binProportions(edges, values);

    // Assert: nothing below 0, eight in [0, 0.2), none in [0.2, 1), two in [1, ∞)
    expect(counts).toEqual([0, 8, 0, 2]);
    expect(proportions).toEqual([0, 0.8, 0, 0.2]);
  });

  it('when shares have long decimals, then they are rounded to 6 decimals', () => {
    expect(binProportions([1], [0, 1, 2])).toEqual([0.333333, 0.666667]);
    expect(roundProportion(1 / 7)).toBe(0.142857);
  });

  it('when there is no value, then binProportions throws', () => {
    expect(() => binProportions([1], [])).toThrow('at least one value');
  });
});

describe('binEdges', () => {
  it('when values are float32, then a value sent as 5.1 lands in the bin edge 5.1 starts', () => {
    // Arrange: float32(5.1) = 5.0999999046… < 5.1 in float64
    const stored = [5.1];
    const sent = Math.fround(5.1);

    // Act
    const asFloat32 = binEdges(stored, true);
    const asFloat64 = binEdges(stored, false);

    // Assert
    expect(binIndex(asFloat32, sent)).toBe(1);
    expect(binIndex(asFloat64, sent)).toBe(0);
    expect(Array.from(asFloat64)).toEqual([5.1]);
  });
});
