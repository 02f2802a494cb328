-- A `refused` attempt (a refused provider key, a rate limit, a request too big for the model) is no
-- quality evidence, whatever feedback it gets: the quality index and the triggers that keep
-- quality_record leave it out (QUALITY_EVIDENCE_ROW in src/traces/quality-evidence.ts). No stored trace
-- is 'refused' yet, so quality_record needs no recount. purged_evidence keeps, of the purged failures,
-- how many were refused.
ALTER TABLE "purged_evidence" ADD COLUMN "refused" double precision DEFAULT 0 NOT NULL;
--> statement-breakpoint
DROP INDEX IF EXISTS "traces_quality_idx";
--> statement-breakpoint
CREATE INDEX "traces_quality_idx" ON "traces" USING btree ("query_class", "model_key", "source",
  (CASE WHEN outcome = 'success' THEN COALESCE(feedback_time, time) ELSE time END), "seq")
  INCLUDE ("outcome", "feedback", "feedback_source", "feedback_time", "time")
  WHERE ("traces"."outcome" <> 'refused' AND ("traces"."outcome" <> 'success' OR "traces"."feedback" IS NOT NULL));
--> statement-breakpoint
CREATE OR REPLACE FUNCTION tracegate_quality_record_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM inserted WHERE (outcome <> 'refused' AND (outcome <> 'success' OR feedback IS NOT NULL))) THEN
    RETURN NULL;
  END IF;
  INSERT INTO quality_record AS r (query_class, model_key, source, observations, failures, rated_count, rated_sum, judge_count, judge_sum, implicit_count, implicit_sum)
  SELECT query_class, model_key, source, COUNT(*) AS observations, COUNT(*) FILTER (WHERE outcome <> 'success') AS failures,
    COUNT(*) FILTER (WHERE outcome = 'success' AND COALESCE(feedback_source, 'human') IN ('human', 'offline')) AS rated_count, COALESCE(SUM(feedback) FILTER (WHERE outcome = 'success' AND COALESCE(feedback_source, 'human') IN ('human', 'offline')), 0) AS rated_sum,
    COUNT(*) FILTER (WHERE outcome = 'success' AND COALESCE(feedback_source, 'human') = 'judge') AS judge_count, COALESCE(SUM(feedback) FILTER (WHERE outcome = 'success' AND COALESCE(feedback_source, 'human') = 'judge'), 0) AS judge_sum,
    COUNT(*) FILTER (WHERE outcome = 'success' AND COALESCE(feedback_source, 'human') = 'implicit') AS implicit_count, COALESCE(SUM(feedback) FILTER (WHERE outcome = 'success' AND COALESCE(feedback_source, 'human') = 'implicit'), 0) AS implicit_sum
  FROM inserted WHERE (outcome <> 'refused' AND (outcome <> 'success' OR feedback IS NOT NULL))
  GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
  ON CONFLICT (query_class, model_key, source) DO UPDATE SET
    observations = r.observations + excluded.observations, failures = r.failures + excluded.failures,
    rated_count = r.rated_count + excluded.rated_count, rated_sum = r.rated_sum + excluded.rated_sum,
    judge_count = r.judge_count + excluded.judge_count, judge_sum = r.judge_sum + excluded.judge_sum,
    implicit_count = r.implicit_count + excluded.implicit_count, implicit_sum = r.implicit_sum + excluded.implicit_sum;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION tracegate_quality_record_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM quality_record r
  WHERE (r.query_class, r.model_key, r.source) IN (SELECT query_class, model_key, source FROM deleted WHERE (outcome <> 'refused' AND (outcome <> 'success' OR feedback IS NOT NULL)))
  ORDER BY r.query_class, r.model_key, r.source FOR UPDATE;
  UPDATE quality_record r SET
    observations = r.observations - d.observations,
    failures = r.failures - d.failures,
    rated_count = r.rated_count - d.rated_count,
    rated_sum = CASE WHEN r.rated_count = d.rated_count THEN 0 ELSE r.rated_sum - d.rated_sum END,
    judge_count = r.judge_count - d.judge_count,
    judge_sum = CASE WHEN r.judge_count = d.judge_count THEN 0 ELSE r.judge_sum - d.judge_sum END,
    implicit_count = r.implicit_count - d.implicit_count,
    implicit_sum = CASE WHEN r.implicit_count = d.implicit_count THEN 0 ELSE r.implicit_sum - d.implicit_sum END
  FROM (SELECT query_class, model_key, source, COUNT(*) AS observations, COUNT(*) FILTER (WHERE outcome <> 'success') AS failures,
      COUNT(*) FILTER (WHERE outcome = 'success' AND COALESCE(feedback_source, 'human') IN ('human', 'offline')) AS rated_count, COALESCE(SUM(feedback) FILTER (WHERE outcome = 'success' AND COALESCE(feedback_source, 'human') IN ('human', 'offline')), 0) AS rated_sum,
      COUNT(*) FILTER (WHERE outcome = 'success' AND COALESCE(feedback_source, 'human') = 'judge') AS judge_count, COALESCE(SUM(feedback) FILTER (WHERE outcome = 'success' AND COALESCE(feedback_source, 'human') = 'judge'), 0) AS judge_sum,
      COUNT(*) FILTER (WHERE outcome = 'success' AND COALESCE(feedback_source, 'human') = 'implicit') AS implicit_count, COALESCE(SUM(feedback) FILTER (WHERE outcome = 'success' AND COALESCE(feedback_source, 'human') = 'implicit'), 0) AS implicit_sum
    FROM deleted WHERE (outcome <> 'refused' AND (outcome <> 'success' OR feedback IS NOT NULL))
    GROUP BY 1, 2, 3) d
  WHERE r.query_class = d.query_class AND r.model_key = d.model_key AND r.source = d.source;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION tracegate_quality_record_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE quality_record r SET
    observations = r.observations - d.observations,
    failures = r.failures - d.failures,
    rated_count = r.rated_count - d.rated_count,
    rated_sum = CASE WHEN r.rated_count = d.rated_count THEN 0 ELSE r.rated_sum - d.rated_sum END,
    judge_count = r.judge_count - d.judge_count,
    judge_sum = CASE WHEN r.judge_count = d.judge_count THEN 0 ELSE r.judge_sum - d.judge_sum END,
    implicit_count = r.implicit_count - d.implicit_count,
    implicit_sum = CASE WHEN r.implicit_count = d.implicit_count THEN 0 ELSE r.implicit_sum - d.implicit_sum END
  FROM (SELECT query_class, model_key, source, COUNT(*) AS observations, COUNT(*) FILTER (WHERE outcome <> 'success') AS failures,
      COUNT(*) FILTER (WHERE outcome = 'success' AND COALESCE(feedback_source, 'human') IN ('human', 'offline')) AS rated_count, COALESCE(SUM(feedback) FILTER (WHERE outcome = 'success' AND COALESCE(feedback_source, 'human') IN ('human', 'offline')), 0) AS rated_sum,
      COUNT(*) FILTER (WHERE outcome = 'success' AND COALESCE(feedback_source, 'human') = 'judge') AS judge_count, COALESCE(SUM(feedback) FILTER (WHERE outcome = 'success' AND COALESCE(feedback_source, 'human') = 'judge'), 0) AS judge_sum,
      COUNT(*) FILTER (WHERE outcome = 'success' AND COALESCE(feedback_source, 'human') = 'implicit') AS implicit_count, COALESCE(SUM(feedback) FILTER (WHERE outcome = 'success' AND COALESCE(feedback_source, 'human') = 'implicit'), 0) AS implicit_sum
    FROM (VALUES (OLD.query_class, OLD.model_key, OLD.source, OLD.outcome, OLD.feedback, OLD.feedback_source))
    AS o(query_class, model_key, source, outcome, feedback, feedback_source) WHERE (outcome <> 'refused' AND (outcome <> 'success' OR feedback IS NOT NULL))
    GROUP BY 1, 2, 3) d
  WHERE r.query_class = d.query_class AND r.model_key = d.model_key AND r.source = d.source;
  INSERT INTO quality_record AS r (query_class, model_key, source, observations, failures, rated_count, rated_sum, judge_count, judge_sum, implicit_count, implicit_sum)
  SELECT query_class, model_key, source, COUNT(*) AS observations, COUNT(*) FILTER (WHERE outcome <> 'success') AS failures,
    COUNT(*) FILTER (WHERE outcome = 'success' AND COALESCE(feedback_source, 'human') IN ('human', 'offline')) AS rated_count, COALESCE(SUM(feedback) FILTER (WHERE outcome = 'success' AND COALESCE(feedback_source, 'human') IN ('human', 'offline')), 0) AS rated_sum,
    COUNT(*) FILTER (WHERE outcome = 'success' AND COALESCE(feedback_source, 'human') = 'judge') AS judge_count, COALESCE(SUM(feedback) FILTER (WHERE outcome = 'success' AND COALESCE(feedback_source, 'human') = 'judge'), 0) AS judge_sum,
    COUNT(*) FILTER (WHERE outcome = 'success' AND COALESCE(feedback_source, 'human') = 'implicit') AS implicit_count, COALESCE(SUM(feedback) FILTER (WHERE outcome = 'success' AND COALESCE(feedback_source, 'human') = 'implicit'), 0) AS implicit_sum
  FROM (VALUES (NEW.query_class, NEW.model_key, NEW.source, NEW.outcome, NEW.feedback, NEW.feedback_source))
    AS n(query_class, model_key, source, outcome, feedback, feedback_source) WHERE (outcome <> 'refused' AND (outcome <> 'success' OR feedback IS NOT NULL))
  GROUP BY 1, 2, 3
  ON CONFLICT (query_class, model_key, source) DO UPDATE SET
    observations = r.observations + excluded.observations, failures = r.failures + excluded.failures,
    rated_count = r.rated_count + excluded.rated_count, rated_sum = r.rated_sum + excluded.rated_sum,
    judge_count = r.judge_count + excluded.judge_count, judge_sum = r.judge_sum + excluded.judge_sum,
    implicit_count = r.implicit_count + excluded.implicit_count, implicit_sum = r.implicit_sum + excluded.implicit_sum;
  RETURN NULL;
END $$;
--> statement-breakpoint
DROP TRIGGER IF EXISTS traces_quality_record_update ON traces;
--> statement-breakpoint
CREATE TRIGGER traces_quality_record_update AFTER UPDATE OF feedback, feedback_source, outcome, query_class, model_key, source ON traces
  FOR EACH ROW WHEN ((OLD.outcome <> 'refused' AND (OLD.outcome <> 'success' OR OLD.feedback IS NOT NULL)) OR (NEW.outcome <> 'refused' AND (NEW.outcome <> 'success' OR NEW.feedback IS NOT NULL)))
  EXECUTE FUNCTION tracegate_quality_record_update();
