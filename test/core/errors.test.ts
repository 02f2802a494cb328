import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  DatasetError,
  ERROR_CODES,
  MissingDatabaseError,
  StoreOpenError,
  StoreUnavailableError,
  TraceLineError,
  TracegateError,
  UnknownPolicyError,
  UsageError,
} from '../../src/core/errors.js';

describe('the errors a user can meet', () => {
  it('each has its own stable code, a name of its own and the CLI exit status', () => {
    const all: TracegateError[] = [
      new ConfigError('bad'),
      new UsageError('bad'),
      new DatasetError('bad'),
      new UnknownPolicyError('nope', ['adaptive']),
      new MissingDatabaseError('/x.db'),
      new StoreOpenError('bad'),
      new StoreUnavailableError('bad'),
      new TraceLineError(3, 'bad'),
    ];
    for (const err of all) {
      expect(err).toBeInstanceOf(TracegateError);
      expect(err.exitCode).toBe(1);
      expect(err.name).toBe(err.constructor.name);
    }
    expect(all.map((e) => e.code).sort()).toEqual(Object.values(ERROR_CODES).sort());
    expect(new UnknownPolicyError('nope', ['adaptive', 'learned']).message).toBe('unknown router policy "nope" (known: adaptive, learned)');
    expect(new TraceLineError(3, 'bad').message).toBe('line 3: bad');
  });
});
