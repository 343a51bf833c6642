import { Writable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';
import { StoreHealth } from '../../src/store/store-health.js';

/** The breaker in front of the store: fail fast during an outage, probe until it answers, log once each way. */
describe('store health', () => {
  const healths: StoreHealth[] = [];
  afterEach(() => healths.splice(0).forEach((h) => h.stop()));

  const setup = (probe: () => Promise<void>) => {
    const lines: { state?: string; msg: string }[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as { state?: string; msg: string });
        done();
      },
    });
    const health = new StoreHealth('Redis', probe, createLogger('info', sink));
    healths.push(health);
    return { health, lines };
  };
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it('opens on a failure, probes until the store answers, then closes; one log line each way', async () => {
    let answering = false;
    let probes = 0;
    const { health, lines } = setup(async () => {
      probes++;
      if (!answering) throw new Error('ECONNREFUSED');
    });
    health.up();
    health.down(new Error('Command timed out'));
    health.down(new Error('connection closed')); // the same outage: not logged again
    expect(health.isDown).toBe(true);
    // Probes keep coming (every 250 ms) while the store does not answer, and the breaker stays open.
    await vi.waitFor(() => expect(probes).toBeGreaterThanOrEqual(2), { timeout: 5_000, interval: 20 });
    expect(health.isDown).toBe(true);
    answering = true;
    expect(await health.whenUp(5_000)).toBe(true);
    expect(health.isDown).toBe(false);
    expect(lines.map((l) => l.state)).toEqual(['up', 'down', 'up']);
    expect(lines[1]!.msg).toMatch(/^store unreachable: Redis did not answer \(Command timed out\)/);
  });

  it('whenUp gives up after its timeout while the store stays down', async () => {
    const { health } = setup(async () => {
      throw new Error('down');
    });
    health.down(new Error('down'));
    expect(await health.whenUp(300)).toBe(false);
  });

  it('stops probing once stopped', async () => {
    let probes = 0;
    const { health } = setup(async () => {
      probes++;
      throw new Error('down');
    });
    health.down(new Error('down'));
    health.stop();
    const before = probes;
    await sleep(600);
    expect(probes - before).toBeLessThanOrEqual(1);
  });
});
