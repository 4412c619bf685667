import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { backoffDelay, retry } from '../../src/lib/retry.ts';

class Flaky extends Error {}

function recorder() {
  const waits: number[] = [];
  return { waits, sleep: async (ms: number) => void waits.push(ms) };
}

describe('retry', () => {
  it('returns the first success without waiting', async () => {
    const { waits, sleep } = recorder();
    const attempts: number[] = [];
    const out = await retry(
      async (n) => {
        attempts.push(n);
        return 'ok';
      },
      { tries: 4, baseMs: 100, isRetryable: () => true, sleep },
    );
    assert.equal(out, 'ok');
    assert.deepEqual(attempts, [1]);
    assert.deepEqual(waits, []);
  });

  it('retries retryable errors with growing, jittered waits and reports each retry', async () => {
    const { waits, sleep } = recorder();
    const retries: Array<[number, number]> = [];
    let calls = 0;
    const out = await retry(
      async () => {
        calls++;
        if (calls < 4) throw new Flaky(`fail ${calls}`);
        return calls;
      },
      {
        tries: 4,
        baseMs: 100,
        isRetryable: (e) => e instanceof Flaky,
        onRetry: (_e, attempt, delay) => retries.push([attempt, delay]),
        sleep,
        random: () => 1,
      },
    );
    assert.equal(out, 4);
    assert.deepEqual(waits, [100, 200, 400]);
    assert.deepEqual(retries, [
      [1, 100],
      [2, 200],
      [3, 400],
    ]);
  });

  it('throws the last error once the tries are used up', async () => {
    const { waits, sleep } = recorder();
    let calls = 0;
    await assert.rejects(
      retry(
        async () => {
          throw new Flaky(`fail ${++calls}`);
        },
        { tries: 3, baseMs: 10, isRetryable: () => true, sleep, random: () => 0 },
      ),
      /fail 3/,
    );
    assert.equal(calls, 3);
    assert.deepEqual(waits, [5, 10]);
  });

  it('throws a non-retryable error at once', async () => {
    const { waits, sleep } = recorder();
    let calls = 0;
    await assert.rejects(
      retry(
        async () => {
          calls++;
          throw new Error('bad input');
        },
        { tries: 5, baseMs: 10, isRetryable: (e) => e instanceof Flaky, sleep },
      ),
      /bad input/,
    );
    assert.equal(calls, 1);
    assert.deepEqual(waits, []);
  });

  it('treats tries below 1 as one attempt', async () => {
    let calls = 0;
    await assert.rejects(
      retry(
        async () => {
          calls++;
          throw new Flaky('x');
        },
        { tries: 0, baseMs: 1, isRetryable: () => true },
      ),
    );
    assert.equal(calls, 1);
  });

  it('waits on the real clock by default (fake timers)', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      let calls = 0;
      const done = retry(
        async () => {
          if (++calls < 3) throw new Flaky('x');
          return calls;
        },
        { tries: 3, baseMs: 1000, isRetryable: () => true, random: () => 1 },
      );
      const tick = async (ms: number) => {
        for (let i = 0; i < 5; i++) await Promise.resolve();
        mock.timers.tick(ms);
      };
      await tick(999);
      assert.equal(calls, 1, 'still waiting before the first backoff ends');
      await tick(1);
      await tick(2000);
      assert.equal(await done, 3);
    } finally {
      mock.timers.reset();
    }
  });
});

describe('backoffDelay', () => {
  const cases: Array<[number, number, number | undefined, number, number]> = [
    // attempt, base, max, random, delay
    [1, 100, undefined, 0, 50],
    [1, 100, undefined, 1, 100],
    [2, 100, undefined, 0.5, 150],
    [3, 100, undefined, 1, 400],
    [10, 100, 1000, 1, 1000],
    [10, 100, 1000, 0, 500],
  ];
  for (const [attempt, base, max, random, delay] of cases) {
    it(`attempt ${attempt}, base ${base}, max ${max ?? 'default'}, random ${random} → ${delay} ms`, () => {
      assert.equal(
        backoffDelay(attempt, base, max, () => random),
        delay,
      );
    });
  }
  it('always lies between half the step and the step', () => {
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(3, 100);
      assert.ok(d >= 200 && d <= 400, String(d));
    }
  });
});
