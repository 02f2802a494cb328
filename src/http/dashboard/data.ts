import type { Context } from 'hono';
import type { Services } from '../../pipeline/services.js';
import { toLine } from '../../traces/interchange.js';
import type { TraceRecord, TrafficBucket } from '../../traces/types.js';
import { bucketParam, limitParam, windowParam } from '../admin-query.js';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** Bucket widths the chart uses: the smallest that gives at most TARGET_BUCKETS over the window. */
const NICE_BUCKETS = [
  SECOND, 2 * SECOND, 5 * SECOND, 10 * SECOND, 15 * SECOND, 30 * SECOND,
  MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE,
  HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY,
];
const TARGET_BUCKETS = 60;
const MAX_BUCKETS = 1000;
/** `window=auto`: from the first trace of the last day, and never less than 20 s (1 s buckets). */
const AUTO_MAX_WINDOW = DAY;
const AUTO_MIN_WINDOW = 20 * SECOND;
const MAX_WINDOW = 31 * DAY;
const DEFAULT_LIMIT = 25;
const MAX_LIMIT = 200;

export function niceBucket(spanMs: number): number {
  const wanted = spanMs / TARGET_BUCKETS;
  return NICE_BUCKETS.find((b) => b >= wanted) ?? Math.ceil(wanted / DAY) * DAY;
}

export interface TrafficSeries {
  /** Start of each bucket, epoch ms, oldest first, without gaps. */
  buckets: number[];
  /** class → model → traces per bucket (and successes per bucket), aligned with `buckets`. */
  classes: Record<string, Record<string, { count: number[]; successes: number[] }>>;
}

/** Turns the store's sparse rows into dense arrays, one slot per bucket from `since` to `until`. */
export function denseTraffic(rows: TrafficBucket[], since: number, until: number, bucketMs: number): TrafficSeries {
  const first = Math.floor(since / bucketMs) * bucketMs;
  const n = Math.max(1, Math.ceil((until - first) / bucketMs));
  const buckets = Array.from({ length: n }, (_, i) => first + i * bucketMs);
  const classes: TrafficSeries['classes'] = {};
  for (const row of rows) {
    const i = Math.round((row.start - first) / bucketMs);
    if (i < 0 || i >= n) continue;
    const models = (classes[row.queryClass] ??= {});
    const series = (models[row.model] ??= { count: new Array<number>(n).fill(0), successes: new Array<number>(n).fill(0) });
    series.count[i]! += row.count;
    series.successes[i]! += row.successes;
  }
  return { buckets, classes };
}

/**
 * A trace as the dashboard shows it: the export's columns (traces/interchange.ts) but the request id,
 * key name, source, instance and feedback time, with `model` for model_key; prompt text only as
 * `traces.storePrompts` kept it.
 */
function recentTrace(t: TraceRecord) {
  const { request_id, model_key, feedback_time, key_name, source, instance_id, ...shown } = toLine(t);
  return { ...shown, model: model_key };
}

/**
 * GET /dashboard/data?window=auto|SECONDS&bucket=SECONDS&limit=N: traffic per time bucket × class ×
 * model over the window (counted in SQL), and the newest N traces. The page takes everything else from /stats.
 */
export function getDashboardData(gw: Pick<Services, 'store'>) {
  return async function handleDashboardData(c: Context) {
    const now = Date.now();
    const window = windowParam(c.req.query('window'));
    const bucket = bucketParam(c.req.query('bucket'));
    const limit = limitParam(c.req.query('limit'), MAX_LIMIT) ?? DEFAULT_LIMIT;

    let span: number;
    if (window === 'auto') {
      const [first] = await gw.store.list({ since: now - AUTO_MAX_WINDOW, limit: 1 });
      span = Math.max(AUTO_MIN_WINDOW, now - (first?.time ?? now));
    } else {
      span = Math.min(MAX_WINDOW, window * SECOND);
    }
    let bucketMs = bucket !== undefined ? Math.max(SECOND, Math.round(bucket * SECOND)) : niceBucket(span);
    if (span / bucketMs > MAX_BUCKETS) bucketMs = niceBucket((span * TARGET_BUCKETS) / MAX_BUCKETS);
    const since = Math.floor((now - span) / bucketMs) * bucketMs;
    const until = now + 1;

    const [rows, recent] = await Promise.all([
      gw.store.traffic({ since, until, bucketMs }),
      gw.store.recent(limit),
    ]);
    c.header('cache-control', 'no-store');
    return c.json({
      now,
      window: { mode: window === 'auto' ? 'auto' : 'fixed', since, until, bucket_ms: bucketMs },
      traffic: denseTraffic(rows, since, until, bucketMs),
      recent: recent.map(recentTrace),
    });
  };
}
