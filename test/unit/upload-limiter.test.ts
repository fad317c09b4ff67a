import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { createUploadLimiter, UploadLimitError, type AdmitBytes } from '../../src/quota/upload-limiter.js';

const chunks = (...texts: string[]) => texts.map((t) => Buffer.from(t));

/** Streams the chunks (one write each) through a limiter; resolves with what came out, or rejects. */
async function run<R>(input: Buffer[], admit: AdmitBytes<R>, received: string[] = []): Promise<string[]> {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      received.push(chunk.toString());
      callback();
    },
  });
  await pipeline(Readable.from(input), createUploadLimiter(admit), sink);
  return received;
}

function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe('createUploadLimiter', () => {
  test('passes every chunk through, in order, while admit answers undefined', async () => {
    const asked: number[] = [];
    const out = await run(chunks('ab', 'cde', 'f'), (bytes) => {
      asked.push(bytes);
      return undefined;
    });
    assert.deepEqual(out, ['ab', 'cde', 'f']);
    assert.deepEqual(asked, [2, 3, 1]);
  });

  test('cuts the upload with an UploadLimitError carrying the rejection at the first refused chunk', async () => {
    const received: string[] = [];
    const asked: number[] = [];
    let total = 0;
    const rejection = { kind: 'container_usage', limit: 5 };
    await assert.rejects(
      run(chunks('ab', 'cd', 'ef', 'gh'), (bytes) => {
        asked.push(bytes);
        if (total + bytes > 5) return rejection;
        total += bytes;
        return undefined;
      }, received),
      (error: unknown) => {
        assert.ok(error instanceof UploadLimitError);
        assert.ok(error instanceof Error);
        assert.equal(error.rejection, rejection);
        assert.equal(error.code, 'SQP_ERR_UPLOAD_CUT');
        assert.equal(error.message, 'Upload exceeds quota.');
        return true;
      },
    );
    // 2 + 2 = 4 fit; the third chunk (6) does not and is not passed on; nothing after it is asked about.
    assert.deepEqual(received, ['ab', 'cd']);
    assert.deepEqual(asked, [2, 2, 2]);
  });

  test('a refusal of the very first chunk lets nothing through', async () => {
    const received: string[] = [];
    await assert.rejects(run(chunks('x'), () => 'no', received), UploadLimitError);
    assert.deepEqual(received, []);
  });

  test('async admit works', async () => {
    const out = await run(chunks('a', 'bb', 'ccc'), async () => {
      await sleep(1);
      return undefined;
    });
    assert.deepEqual(out, ['a', 'bb', 'ccc']);
  });

  test('an async refusal cuts the upload', async () => {
    const received: string[] = [];
    await assert.rejects(
      run(chunks('a', 'b'), async (bytes) => {
        await sleep(1);
        return received.length >= 1 ? { bytes } : undefined;
      }, received),
      (error: unknown) => error instanceof UploadLimitError && (error.rejection as { bytes: number }).bytes === 1,
    );
    assert.deepEqual(received, ['a']);
  });

  test('an admit that fails errors the stream with its own error', async () => {
    const failure = new Error('usage unavailable');
    await assert.rejects(run(chunks('a'), () => Promise.reject(failure)), (error: unknown) => error === failure);
  });

  test('backpressure: a chunk waits for its answer, the next is not asked about meanwhile, order is kept', async () => {
    const answers = [deferred<undefined>(), deferred<undefined>(), deferred<undefined>()];
    const asked: number[] = [];
    const received: string[] = [];
    const done = run(chunks('1', '22', '333'), (bytes) => {
      asked.push(bytes);
      return answers[asked.length - 1]!.promise;
    }, received);

    await sleep(10);
    assert.deepEqual(asked, [1], 'the second chunk must wait for the first answer');
    assert.deepEqual(received, []);

    // Answering later chunks first changes nothing: they have not been asked about yet.
    answers[2]!.resolve(undefined);
    answers[1]!.resolve(undefined);
    await sleep(10);
    assert.deepEqual(asked, [1]);
    assert.deepEqual(received, []);

    answers[0]!.resolve(undefined);
    assert.deepEqual(await done, ['1', '22', '333']);
    assert.deepEqual(asked, [1, 2, 3]);
  });
});
