import { RowValidator } from '@onnx-batch/shared';
import { floatTensorManifest, grid, imageManifest, int64Manifest, realManifest, textManifest } from './fixtures';

const IRIS_FEATURES = 'sepal_length, sepal_width, petal_length, petal_width';

function irisRow(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { sepal_length: 5.1, sepal_width: 3.5, petal_length: 1.4, petal_width: 0.2, ...overrides };
}

describe('RowValidator on the iris v1 manifest', () => {
  const validator = new RowValidator(realManifest('iris', '1'));

  it('when an object row holds every feature within bounds, then it is valid', () => {
    // Act
    const error = validator.check(irisRow());

    // Assert
    expect(error).toBeNull();
  });

  it('when an array row holds four numbers in manifest order, then it is valid', () => {
    expect(validator.check([5.1, 3.5, 1.4, 0.2])).toBeNull();
  });

  it('when values sit exactly on the bounds 0 and 10, then the row is valid', () => {
    expect(validator.check([0, 10, 0, 10])).toBeNull();
  });

  it('when an object row carries a string id, then it is valid', () => {
    expect(validator.check(irisRow({ id: 'flower-1' }))).toBeNull();
  });

  it('when an object row carries an integer id, then it is valid', () => {
    expect(validator.check(irisRow({ id: 42 }))).toBeNull();
  });

  it('when an id is a fraction, then the error names the id field', () => {
    // Act
    const error = validator.check(irisRow({ id: 1.5 }));

    // Assert
    expect(error?.field).toBe('id');
  });

  it('when an id is longer than 256 characters, then the error names the id field', () => {
    expect(validator.check(irisRow({ id: 'x'.repeat(257) }))).toEqual({
      field: 'id',
      message: 'must be a string (at most 256 characters) or an integer',
    });
  });

  it('when a feature is missing, then the error names it and says it is required', () => {
    // Arrange
    const row = irisRow();
    delete row.petal_width;

    // Act
    const error = validator.check(row);

    // Assert
    expect(error).toEqual({ field: 'petal_width', message: 'is required' });
  });

  it('when a row has a key that is not a feature, then the error names the key and lists the features', () => {
    expect(validator.check(irisRow({ colour: 'blue' }))).toEqual({
      field: 'colour',
      message: `is not a feature of this model (features: ${IRIS_FEATURES})`,
    });
  });

  it('when a value is above the maximum, then the error names the field and the bound', () => {
    expect(validator.check(irisRow({ petal_length: 10.5 }))).toEqual({ field: 'petal_length', message: 'must be <= 10' });
  });

  it('when a value is below the minimum, then the error names the field and the bound', () => {
    expect(validator.check(irisRow({ sepal_length: -0.1 }))).toEqual({ field: 'sepal_length', message: 'must be >= 0' });
  });

  it('when a number is sent as a string, then the error names the field and says it must be a number', () => {
    expect(validator.check(irisRow({ sepal_width: '3.5' }))).toEqual({ field: 'sepal_width', message: 'must be number' });
  });

  it('when a value is NaN, then the row is rejected naming the field', () => {
    expect(validator.check(irisRow({ sepal_width: Number.NaN }))).toEqual({ field: 'sepal_width', message: 'must be number' });
  });

  it('when a value overflows to Infinity through JSON.parse("1e309"), then the row is rejected naming the field', () => {
    // Arrange
    const row = JSON.parse('{"sepal_length":1e309,"sepal_width":3.5,"petal_length":1.4,"petal_width":0.2}') as unknown;

    // Act
    const error = validator.check(row);

    // Assert
    expect(error).toEqual({ field: 'sepal_length', message: 'must be number' });
  });

  it('when a value is negative Infinity, then the row is rejected naming the field', () => {
    expect(validator.check([5.1, 3.5, Number.NEGATIVE_INFINITY, 0.2])).toEqual({ field: 'petal_length', message: 'must be number' });
  });

  it('when an array row is too short, then the message lists the features in order', () => {
    expect(validator.check([5.1, 3.5, 1.4])).toEqual({ message: `must hold exactly 4 values, in order: ${IRIS_FEATURES}` });
  });

  it('when an array row is too long, then the message lists the features in order', () => {
    expect(validator.check([5.1, 3.5, 1.4, 0.2, 9])).toEqual({ message: `must hold exactly 4 values, in order: ${IRIS_FEATURES}` });
  });

  it('when an array element has the wrong type, then the field is the feature name of that position', () => {
    expect(validator.check([5.1, 3.5, 'long', 0.2])).toEqual({ field: 'petal_length', message: 'must be number' });
  });

  it('when an array element is out of bounds, then the field is the feature name of that position', () => {
    expect(validator.check([5.1, 3.5, 1.4, 11])).toEqual({ field: 'petal_width', message: 'must be <= 10' });
  });

  it.each([
    ['null', null],
    ['a number', 5],
    ['a string', 'sepal_length=5.1'],
    ['a boolean', true],
  ])('when the row is %s, then the message says what a row must be', (_label, row) => {
    expect(validator.check(row)).toEqual({
      message: `must be an object of features (${IRIS_FEATURES}) or an array of their values`,
    });
  });
});

describe('RowValidator on a 28×28 byte-tensor manifest', () => {
  const validator = new RowValidator(imageManifest());
  const image = (): number[][] => grid(28, 28, (r, c) => (r * 28 + c) % 256);

  it('when the image is a 28×28 nested array of bytes, then it is valid', () => {
    expect(validator.check({ image: image() })).toBeNull();
  });

  it('when the image is sent in array-row form, then it is valid', () => {
    expect(validator.check([image()])).toBeNull();
  });

  it('when one image row is one pixel short, then the error path names that row', () => {
    // Arrange
    const value = image();
    value[3] = (value[3] ?? []).slice(0, 27);

    // Act
    const error = validator.check({ image: value });

    // Assert
    expect(error).toEqual({ field: 'image[3]', message: 'must NOT have fewer than 28 items' });
  });

  it('when an array-form row holds a short image row, then the path starts with the feature name', () => {
    // Arrange
    const value = image();
    value[3] = (value[3] ?? []).slice(0, 27);

    // Act
    const error = validator.check([value]);

    // Assert
    expect(error).toEqual({ field: 'image[3]', message: 'must NOT have fewer than 28 items' });
  });

  it('when the image has 27 rows, then the error names the feature', () => {
    expect(validator.check({ image: image().slice(0, 27) })).toEqual({ field: 'image', message: 'must NOT have fewer than 28 items' });
  });

  it('when a pixel is above 255, then the error path names the pixel', () => {
    // Arrange
    const value = image();
    (value[3] as number[])[5] = 256;

    // Act
    const error = validator.check({ image: value });

    // Assert
    expect(error).toEqual({ field: 'image[3][5]', message: 'must be <= 255' });
  });

  it('when a pixel is a fraction, then the error says it must be an integer', () => {
    // Arrange
    const value = image();
    (value[0] as number[])[0] = 1.5;

    // Act
    const error = validator.check({ image: value });

    // Assert
    expect(error).toEqual({ field: 'image[0][0]', message: 'must be integer' });
  });

  it('when the image is base64 of 784 bytes (1048 characters), then it is valid', () => {
    // Arrange
    const base64 = Buffer.alloc(784, 7).toString('base64');

    // Act
    const error = validator.check({ image: base64 });

    // Assert
    expect(base64).toHaveLength(1048);
    expect(error).toBeNull();
  });

  it('when the base64 string is too short, then the error names the feature and the expected length', () => {
    expect(validator.check({ image: Buffer.alloc(780, 7).toString('base64') })).toEqual({
      field: 'image',
      message: 'must NOT have fewer than 1048 characters',
    });
  });

  it('when the base64 string is too long, then the error names the feature and the expected length', () => {
    expect(validator.check({ image: Buffer.alloc(790, 7).toString('base64') })).toEqual({
      field: 'image',
      message: 'must NOT have more than 1048 characters',
    });
  });

  it('when the string has the right length but is not base64, then the error names the feature', () => {
    expect(validator.check({ image: '!'.repeat(1048) })).toEqual({
      field: 'image',
      message: 'must match pattern "^[A-Za-z0-9+/]*={0,2}$"',
    });
  });
});

describe('RowValidator on a float tensor manifest', () => {
  const validator = new RowValidator(floatTensorManifest());

  it('when the tensor holds fractions, then it is valid', () => {
    expect(
      validator.check({
        grid: [
          [0.5, 1.5, -2],
          [3, 4, 5.25],
        ],
      }),
    ).toBeNull();
  });

  it('when a tensor element is a string, then the error path names the element', () => {
    expect(
      validator.check({
        grid: [
          [0.5, 1.5, -2],
          [3, '4', 5.25],
        ],
      }),
    ).toEqual({ field: 'grid[1][1]', message: 'must be number' });
  });

  it('when a base64 string is sent for a tensor without base64, then the error names the feature', () => {
    expect(validator.check({ grid: 'AAAAAAAA' })).toEqual({ field: 'grid', message: 'must be array' });
  });
});

describe('RowValidator on a string manifest', () => {
  const validator = new RowValidator(textManifest(5));

  it('when the text is exactly maxLength characters, then it is valid', () => {
    expect(validator.check({ text: 'abcde' })).toBeNull();
  });

  it('when the text is the empty string, then it is valid', () => {
    expect(validator.check({ text: '' })).toBeNull();
  });

  it('when the text is one character over maxLength, then the error names the field and the limit', () => {
    expect(validator.check({ text: 'abcdef' })).toEqual({ field: 'text', message: 'must NOT have more than 5 characters' });
  });

  it('when the text is five emoji (ten UTF-16 units), then maxLength counts characters and it is valid', () => {
    expect(validator.check({ text: '😀😀😀😀😀' })).toBeNull();
  });

  it('when the text is a number, then the error says it must be a string', () => {
    expect(validator.check([7])).toEqual({ field: 'text', message: 'must be string' });
  });
});

describe('RowValidator on an integer manifest', () => {
  const validator = new RowValidator(int64Manifest());

  it('when both counts are integers, then the row is valid', () => {
    expect(validator.check({ visits: 3, clicks: 0 })).toBeNull();
  });

  it('when a count is a fraction, then the error names the field', () => {
    expect(validator.check({ visits: 3, clicks: 0.5 })).toEqual({ field: 'clicks', message: 'must be integer' });
  });

  it('when a count is negative, then the error names the field and the bound', () => {
    expect(validator.check([-1, 0])).toEqual({ field: 'visits', message: 'must be >= 0' });
  });
});
