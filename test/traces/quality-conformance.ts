import { expect, it } from 'vitest';
import type { QualityEvidence, QualityEvidenceQuery } from '../../src/traces/quality-evidence.js';
import { SqliteTraceStore } from '../../src/traces/sqlite-store.js';
import { PgTraceStore } from '../../src/traces/pg-store.js';
import type { FeedbackSource, TraceRecord, TraceStore } from '../../src/traces/types.js';
import { FakeEvidenceSource, type FakeTrace } from '../routing/fake-evidence.js';
import { makeTrace } from '../helpers/trace.js';

/**
 * `qualityEvidence` and the `quality_record` table against brute force (FakeEvidenceSource), for the
 * store conformance suite (test/traces/store-conformance.test.ts runs these on SQLite and PostgreSQL).
 * The stores read the whole record from `quality_record`, and with forgetting only each arm's newest
 * K = ⌈64 / log2(1/decay)⌉ pieces of evidence (64 for decay 0.5, 422 for 0.9): one arm here has more
 * than 600, some of its oldest traces rated last (so the newest pieces by evidence time are not the
 * newest traces), and evidence times tie (so `seq` breaks the ties).
 */

const T0 = 1_780_000_000_000;
/** Later than every trace's time: feedback given after the traces were recorded. */
const LATE = T0 + 100_000_000;
const SCORES = [0, 0.1, 0.25, 0.5, 0.75, 0.9, 1];
const SOURCES: (FeedbackSource | null)[] = ['human', 'judge', 'implicit', null];
const KEYS = ['failures', 'ratedCount', 'ratedSum', 'judgeCount', 'judgeSum', 'implicitCount', 'implicitSum'] as const;
const QUERIES: QualityEvidenceQuery[] = [
  {}, { decay: 0.5 }, { decay: 0.9 }, { source: 'live' }, { source: 'live', decay: 0.5 }, { source: 'live', decay: 0.9 },
  { source: 'offline' }, { source: 'offline', decay: 0.5 }, { since: T0 + 3_000 }, { since: T0 + 3_000, until: T0 + 9_000, decay: 0.9 },
  { until: T0 + 6_000, source: 'live', decay: 0.5 },
];

interface Model {
  fake: FakeEvidenceSource;
  /** Traces `purge` deleted. */
  purged: FakeTrace[];
}

function fakeOf(t: TraceRecord): FakeTrace {
  return {
    id: t.id, time: t.time, queryClass: t.queryClass, model: t.modelKey, outcome: t.outcome, feedback: t.feedback,
    feedbackSource: t.feedbackSource, costUsd: t.costUsd, latencyMs: t.latencyMs, source: t.source,
    ...(t.feedbackTime === null ? {} : { feedbackTime: t.feedbackTime }),
  };
}

/** Traces over six arms (and a few without a model), varied and reproducible; ('code', 'a') has most of them. */
function traces(): TraceRecord[] {
  let x = 11;
  const rand = () => (x = (x * 48271) % 2147483647) / 2147483647;
  const pick = <T>(list: readonly T[]) => list[Math.floor(rand() * list.length)]!;
  const out: TraceRecord[] = [];
  for (let i = 0; i < 1_500; i++) {
    const big = i % 3 !== 0;
    // Three traces per 10 ms: failures recorded together tie in evidence time.
    const time = T0 + Math.floor(i / 3) * 10;
    const offline = !big && rand() < 0.12;
    const r = rand();
    const failed = r < 0.2;
    const rated = offline || (!failed && r > 0.5) || (failed && r < 0.03);
    out.push(
      makeTrace({
        id: `Q${String(i).padStart(25, '0')}`,
        time,
        queryClass: big ? 'code' : pick(['code', 'short']),
        modelKey: i % 97 === 5 ? '' : big ? 'a' : pick(['b', 'c']),
        outcome: failed ? pick(['error', 'timeout', 'refused'] as const) : 'success',
        feedback: rated ? pick(SCORES) : null,
        // Given with the trace, or a little later (ties included).
        feedbackTime: rated ? time + Math.floor(rand() * 5) * 10 : null,
        feedbackSource: !rated ? null : offline ? 'offline' : pick(SOURCES),
        source: offline ? 'offline' : 'live',
      }),
    );
  }
  return out;
}

/** Inserts the traces, then gives late feedback (replacing some: a person over a judge, implicit over a judge, a judge refused). */
async function filled(s: TraceStore): Promise<Model> {
  const all = traces();
  await Promise.all(all.slice(0, 1_000).map((t) => s.insert(t)));
  // SQLite's `quality_record` counts the traces up to its last fill of `trace_arms` (which a per-arm
  // read makes) and reads those past it: some are on either side here, and late feedback reaches both.
  await s.recentByArm(1);
  await Promise.all(all.slice(1_000).map((t) => s.insert(t)));
  const fake = new FakeEvidenceSource().add(...all.map(fakeOf));
  let at = LATE;
  const give = async (t: TraceRecord, source: FeedbackSource, score: number) => {
    const time = (at += 7);
    const result = await s.setFeedback(t.id, { score, comment: null, time, source });
    if (result?.applied) fake.setFeedback(t.id, score, source, time);
  };
  const big = all.filter((t) => t.modelKey === 'a');
  // The oldest traces of the big arm rated last: the newest evidence by time, the oldest by seq.
  for (const [i, t] of big.slice(0, 40).entries()) await give(t, (['human', 'judge', 'implicit'] as const)[i % 3]!, SCORES[i % 7]!);
  for (const [i, t] of all.filter((t) => t.modelKey !== 'a').slice(0, 60).entries()) {
    await give(t, 'judge', SCORES[i % 7]!);
    if (i % 4 === 0) await give(t, 'human', SCORES[(i + 3) % 7]!);
    if (i % 4 === 1) await give(t, 'implicit', SCORES[(i + 2) % 7]!);
    if (i % 4 === 2) await give(t, 'judge', SCORES[(i + 1) % 7]!);
  }
  // A judge again (it replaces only a judge's score), and a failed trace rated.
  for (const t of big.slice(0, 6)) await give(t, 'judge', 0.3);
  await give(all.find((t) => t.outcome !== 'success' && t.feedback === null && t.modelKey === 'b')!, 'human', 1);
  return { fake, purged: [] };
}

const armKey = (r: { queryClass: string; model: string }) => `${r.queryClass}/${r.model}`;

function expectSame(actual: QualityEvidence[], expected: QualityEvidence[], what: string) {
  const sorted = (rows: QualityEvidence[]) => [...rows].sort((a, b) => (armKey(a) < armKey(b) ? -1 : 1));
  const [got, want] = [sorted(actual), sorted(expected)];
  expect(got.map(armKey), what).toEqual(want.map(armKey));
  got.forEach((row, i) => {
    expect(row.observations, `${what} ${armKey(row)} observations`).toBe(want[i]!.observations);
    for (const key of KEYS) expect(row[key], `${what} ${armKey(row)} ${key}`).toBeCloseTo(want[i]![key], 9);
  });
}

/** What the store should answer: brute force over the stored traces, plus what `purge` deleted as the stores document it. */
async function expected(model: Model, query: QualityEvidenceQuery): Promise<QualityEvidence[]> {
  const stored = (await model.fake.qualityEvidence(query)).filter((r) => r.model !== '');
  if (query.since !== undefined || query.until !== undefined || query.source === 'offline' || model.purged.length === 0) return stored;
  // Purged evidence is older than every stored piece and taken as evenly spread: n pieces weigh
  // γ^(stored pieces) · (1 − γ^n) / (1 − γ) in all.
  const old = new FakeEvidenceSource().add(...model.purged);
  const decay = query.decay ?? 1;
  for (const p of (await old.qualityEvidence({})).filter((r) => r.model !== '')) {
    let arm = stored.find((r) => armKey(r) === armKey(p));
    if (!arm) {
      arm = { queryClass: p.queryClass, model: p.model, observations: 0, failures: 0, ratedCount: 0, ratedSum: 0,
        judgeCount: 0, judgeSum: 0, implicitCount: 0, implicitSum: 0 };
      stored.push(arm);
    }
    const n = p.observations;
    const scale = decay === 1 ? 1 : (Math.pow(decay, arm.observations) * (1 - Math.pow(decay, n))) / (1 - decay) / n;
    arm.observations += n;
    for (const key of KEYS) arm[key] += p[key] * scale;
  }
  return stored;
}

async function expectAllQueries(s: TraceStore, model: Model, when: string) {
  for (const query of QUERIES) expectSame(await s.qualityEvidence(query), await expected(model, query), `${when} ${JSON.stringify(query)}`);
}

type RecordRow = { queryClass: string; model: string; source: string } & Omit<QualityEvidence, 'queryClass' | 'model'>;

/** `quality_record` as stored (rows with evidence); SQLite's once every trace is filled in (a per-arm read fills). */
async function recordTable(s: TraceStore): Promise<RecordRow[]> {
  await s.recentByArm(1);
  const text = `SELECT query_class AS "queryClass", model_key AS model, source, observations, failures, rated_count AS "ratedCount",
    rated_sum AS "ratedSum", judge_count AS "judgeCount", judge_sum AS "judgeSum", implicit_count AS "implicitCount",
    implicit_sum AS "implicitSum" FROM quality_record WHERE observations <> 0`;
  if (s instanceof SqliteTraceStore) return s.db.prepare(text).all() as RecordRow[];
  if (s instanceof PgTraceStore) {
    const rows = (await s.pool.query(text)).rows as Record<string, unknown>[];
    return rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'string' && /Count$|^observations$|^failures$/.test(k) ? Number(v) : v]))) as RecordRow[];
  }
  throw new Error('unknown store');
}

/** `quality_record` by brute force: plain sums per class × model × source over the stored traces (those without a model too). */
async function expectRecord(s: TraceStore, model: Model, when: string) {
  const want: RecordRow[] = [];
  for (const source of ['live', 'offline'] as const) {
    const only = new FakeEvidenceSource().add(...model.fake.traces.filter((t) => (t.source ?? 'live') === source));
    for (const row of await only.qualityEvidence({})) want.push({ ...row, source });
  }
  const key = (r: RecordRow) => `${r.queryClass}/${r.model}/${r.source}`;
  const got = (await recordTable(s)).sort((a, b) => (key(a) < key(b) ? -1 : 1));
  want.sort((a, b) => (key(a) < key(b) ? -1 : 1));
  expect(got.map(key), when).toEqual(want.map(key));
  got.forEach((row, i) => {
    expect(row.observations, `${when} ${key(row)}`).toBe(want[i]!.observations);
    for (const k of KEYS) expect(row[k], `${when} ${key(row)} ${k}`).toBeCloseTo(want[i]![k], 9);
  });
}

/** The tests; `store` opens the current test's store (closed after it). */
export function qualityConformance(backend: { reset(): Promise<void> }, store: () => Promise<TraceStore>) {
  it('qualityEvidence equals brute force: whole record and forgetting, live, offline, both and ranges, late and replaced ratings, more than K pieces per arm', async () => {
    await backend.reset();
    const s = await store();
    const model = await filled(s);
    // The big arm has more pieces than either decay's K, and its newest pieces by evidence time are old traces.
    const big = (await model.fake.qualityEvidence({ source: 'live' })).find((r) => r.queryClass === 'code' && r.model === 'a')!;
    expect(big.observations).toBeGreaterThan(600);
    expect(big.implicitCount + big.judgeCount).toBeGreaterThan(0);
    await expectAllQueries(s, model, 'filled');
    // Reopened: the same from what is on disk.
    await s.close();
    await expectAllQueries(await store(), model, 'reopened');
  });

  it('qualityEvidence after purge: the whole record keeps what was purged, forgetting weighs it behind the stored evidence', async () => {
    await backend.reset();
    const s = await store();
    const model = await filled(s);
    const before = await s.qualityEvidence({ source: 'live' });
    const cutoff = T0 + 2_500;
    const removed = model.fake.traces.filter((t) => (t.source ?? 'live') === 'live' && t.time < cutoff);
    expect(await s.purge(cutoff)).toEqual({ deleted: removed.length });
    model.purged.push(...removed);
    model.fake.traces.splice(0, model.fake.traces.length, ...model.fake.traces.filter((t) => !removed.includes(t)));
    expectSame(await s.qualityEvidence({ source: 'live' }), before, 'plain sums after purge');
    await expectAllQueries(s, model, 'purged');
    // A second purge adds to what the first set aside; every live trace of some arms is gone.
    const cutoff2 = T0 + 4_000;
    const more = model.fake.traces.filter((t) => (t.source ?? 'live') === 'live' && t.time < cutoff2);
    expect(await s.purge(cutoff2)).toEqual({ deleted: more.length });
    model.purged.push(...more);
    model.fake.traces.splice(0, model.fake.traces.length, ...model.fake.traces.filter((t) => !more.includes(t)));
    expectSame(await s.qualityEvidence({ source: 'live' }), before, 'plain sums after two purges');
    await expectAllQueries(s, model, 'purged twice');
  });

  it('quality_record stays the brute-force sums through inserts, feedback, purge and purgeOffline', async () => {
    await backend.reset();
    const s = await store();
    await expectRecord(s, { fake: new FakeEvidenceSource(), purged: [] }, 'empty');
    const model = await filled(s);
    await expectRecord(s, model, 'filled');
    // An unrated trace rated by a judge, then by a person.
    const [t] = model.fake.traces.filter((f) => f.outcome === 'success' && f.feedback === null);
    await s.setFeedback(t!.id, { score: 0.4, comment: null, time: LATE * 2, source: 'judge' });
    model.fake.setFeedback(t!.id, 0.4, 'judge', LATE * 2);
    await s.setFeedback(t!.id, { score: 0.6, comment: null, time: LATE * 2 + 1, source: 'human' });
    model.fake.setFeedback(t!.id, 0.6, 'human', LATE * 2 + 1);
    await expectRecord(s, model, 'rated again');
    const cutoff = T0 + 3_000;
    const removed = model.fake.traces.filter((f) => (f.source ?? 'live') === 'live' && f.time < cutoff);
    expect((await s.purge(cutoff)).deleted).toBe(removed.length);
    model.fake.traces.splice(0, model.fake.traces.length, ...model.fake.traces.filter((f) => !removed.includes(f)));
    await expectRecord(s, model, 'purged');
    await s.purgeOffline();
    model.fake.traces.splice(0, model.fake.traces.length, ...model.fake.traces.filter((f) => (f.source ?? 'live') === 'live'));
    await expectRecord(s, model, 'offline purged');
    expect(await s.qualityEvidence({ source: 'offline' })).toEqual([]);
    // Inserts after all that add to it again, rated ones and failures (an unrated success adds nothing).
    const later = [
      makeTrace({ id: 'Qlate-1', queryClass: 'math', modelKey: 'b', outcome: 'error', time: LATE * 3 }),
      makeTrace({ id: 'Qlate-2', queryClass: 'math', modelKey: 'b', feedback: 0.5, feedbackTime: LATE * 3, feedbackSource: 'implicit', time: LATE * 3 }),
      makeTrace({ id: 'Qlate-3', queryClass: 'math', modelKey: 'c', time: LATE * 3 }),
    ];
    for (const l of later) await s.insert(l);
    model.fake.add(...later.map(fakeOf));
    await expectRecord(s, model, 'inserted after');
  });
}
