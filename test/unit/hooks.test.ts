import { captureLogs } from '../helpers/log-capture.js';
import { describe, expect, it } from 'vitest';
import { Hooks } from '../../src/server/events/hooks.js';
import { createLogger } from '../../src/server/logger.js';

describe('Hooks', () => {
  it('runs listeners in declared order, awaiting each, and isolates a failing one', async () => {
    const { log, lines } = captureLogs('error');
    const hooks = new Hooks<{ left: [id: string] }>('rooms', log);
    const seen: string[] = [];
    hooks.on('left', [
      [
        'slow first',
        async (id) => {
          await new Promise((r) => setImmediate(r));
          seen.push(`a:${id}`);
        },
      ],
      [
        'throws',
        () => {
          throw new Error('boom');
        },
      ],
      ['rejects', () => Promise.reject(new Error('bang'))],
      ['last', (id) => void seen.push(`b:${id}`)],
    ]);
    await expect(hooks.emit('left', 'x')).resolves.toBeUndefined();
    expect(seen).toEqual(['a:x', 'b:x']);
    await new Promise((r) => setImmediate(r));
    expect(lines.map((l) => l.listener)).toEqual(['throws', 'rejects']);
    expect(lines.every((l) => l.owner === 'rooms' && l.event === 'left')).toBe(true);
  });

  it('refuses a second declaration of the same event, so order cannot be split across files', () => {
    const hooks = new Hooks<{ e: [] }>('x', createLogger('silent'));
    hooks.on('e', [['one', () => undefined]]);
    expect(() => hooks.on('e', [['two', () => undefined]])).toThrow(/already declared/);
  });

  it('an event nobody listens to is a no-op', async () => {
    const hooks = new Hooks<{ e: [] }>('x', createLogger('silent'));
    await expect(hooks.emit('e')).resolves.toBeUndefined();
  });
});
