import fc from 'fast-check';

/**
 * Query strings the admin endpoints must refuse with a 400 naming the parameter, before any store
 * sees them (PostgreSQL errors on some: a bigint out of range, a NUL in text), and some they take.
 */
export const ODD_ADMIN_QUERIES: ReadonlyArray<readonly [path: string, param: string]> = [
  ['/stats?since=1.5', 'since'],
  ['/stats?since=1e20', 'since'],
  ['/stats?since=99999999999999999999', 'since'],
  ['/stats?until=1e400', 'until'],
  ['/stats?since=-5', 'since'],
  ['/stats?until=abc', 'until'],
  ['/stats?since=%00', 'since'],
  ['/stats?until=2025-13-45', 'until'],
  [`/stats?since=${'9'.repeat(10_000)}`, 'since'],
  ['/dashboard/data?bucket=1e300', 'bucket'],
  ['/dashboard/data?bucket=0', 'bucket'],
  ['/dashboard/data?bucket=-1', 'bucket'],
  ['/dashboard/data?bucket=Infinity', 'bucket'],
  ['/dashboard/data?window=1e300', 'window'],
  ['/dashboard/data?window=NaN', 'window'],
  ['/dashboard/data?window=99999999', 'window'],
  ['/dashboard/data?limit=1e300', 'limit'],
  ['/dashboard/data?limit=0.5', 'limit'],
  ['/dashboard/data?limit=%00', 'limit'],
  [`/dashboard/data?limit=${'1'.repeat(10_000)}`, 'limit'],
];

export const GOOD_ADMIN_QUERIES: readonly string[] = [
  '/stats',
  '/stats?since=0&until=1700000000000',
  '/stats?since=2025-01-01&until=2025-01-31T12:00:00Z',
  '/stats?since=8640000000000000&until=8640000000000000',
  '/stats?since=',
  '/dashboard/data',
  '/dashboard/data?window=auto&limit=5',
  '/dashboard/data?window=300&bucket=10&limit=200',
  '/dashboard/data?window=2.5&bucket=0.5',
];

/** Trace ids `POST /feedback` must refuse with a 400 on `trace_id`. */
export const ODD_TRACE_IDS: readonly string[] = ['abc\u0000def', '\u0000', 'a\nb', 'x'.repeat(10_000)];

/** Values a query parameter may be given: numbers of every kind, dates, and junk. */
const queryValue = fc.oneof(
  fc.integer().map(String),
  fc.double().map(String),
  fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }).map(String),
  fc.constantFrom('1e300', '1e400', '-0', 'NaN', 'Infinity', '0x10', '1_000', ' 5', '5 ', '2025-01-01', '2025-02-30T25:61:00Z', 'auto', '\u0000', '%00'),
  fc.string({ maxLength: 40 }),
  fc.string({ minLength: 2000, maxLength: 5000 }),
);

/** `/stats` and `/dashboard/data` with random values for their parameters. */
export const adminQueries: fc.Arbitrary<string> = fc.oneof(
  fc.record({ since: queryValue, until: queryValue }, { requiredKeys: [] }).map((q) => `/stats?${new URLSearchParams(q)}`),
  fc.record({ window: queryValue, bucket: queryValue, limit: queryValue }, { requiredKeys: [] }).map((q) => `/dashboard/data?${new URLSearchParams(q)}`),
);

/** Chat bodies nested deep (up to 15 000 levels, within a 64 KiB body), in `messages` or beside it, some with `model` twice. */
export const deepBodies: fc.Arbitrary<string> = fc
  .record({ depth: fc.integer({ min: 1, max: 15_000 }), twice: fc.boolean(), inMessages: fc.boolean(), array: fc.boolean() })
  .map(({ depth, twice, inMessages, array }) => {
    const levels = array ? depth : Math.ceil(depth / 3);
    const deep = array ? '['.repeat(levels) + ']'.repeat(levels) : '{"a":'.repeat(levels) + '1' + '}'.repeat(levels);
    const content = inMessages ? deep : '"hi"';
    const extra = inMessages ? '' : `,"x":${deep}`;
    return `{"model":"small","messages":[{"role":"user","content":${content}}]${extra}${twice ? ',"model":"auto"' : ''}}`;
  });
