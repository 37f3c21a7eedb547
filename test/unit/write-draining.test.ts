import { PassThrough } from 'node:stream';
import { writeDraining } from '@onnx-batch/api/dist/streaming/write-draining';

describe('writeDraining', () => {
  it('when a slow reader makes every write wait, then no drain or close listener is left behind', async () => {
    const out = new PassThrough({ highWaterMark: 16 });
    const baseline = { drain: out.listenerCount('drain'), close: out.listenerCount('close') };
    let received = 0;
    // A reader that takes one piece per tick: every write below fills the buffer and waits.
    const reader = setInterval(() => {
      let piece: Buffer | null;
      while ((piece = out.read() as Buffer | null) !== null) received += piece.length;
    }, 1);
    try {
      for (let i = 0; i < 200; i++) {
        await writeDraining(out, 'x'.repeat(64));
        expect(out.listenerCount('drain')).toBe(baseline.drain);
        expect(out.listenerCount('close')).toBe(baseline.close);
      }
    } finally {
      clearInterval(reader);
    }
    expect(received + out.readableLength).toBe(200 * 64);
  });

  it('when the stream closes while a write waits, then the write returns and leaves no listener', async () => {
    const out = new PassThrough({ highWaterMark: 4 });
    const waiting = writeDraining(out, 'more than four bytes');
    out.destroy();
    await waiting;
    expect(out.listenerCount('drain')).toBe(0);
    expect(out.listenerCount('close')).toBe(0);
  });
});
