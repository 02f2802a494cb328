-- Custom SQL migration file, put your code below! --
-- arm_counts follows traces: one statement-level trigger per INSERT, DELETE and TRUNCATE, so a
-- batch of traces costs one small upsert. Rows are upserted in key order, so concurrent batches
-- of several instances lock the same counters in the same order (no deadlock).
CREATE FUNCTION tracegate_arm_counts_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO arm_counts (query_class, model_key, source, count)
  SELECT query_class, model_key, source, COUNT(*) FROM inserted GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
  ON CONFLICT (query_class, model_key, source) DO UPDATE SET count = arm_counts.count + excluded.count;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE FUNCTION tracegate_arm_counts_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE arm_counts a SET count = a.count - d.n
  FROM (SELECT query_class, model_key, source, COUNT(*) AS n FROM deleted GROUP BY 1, 2, 3) d
  WHERE a.query_class = d.query_class AND a.model_key = d.model_key AND a.source = d.source;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE FUNCTION tracegate_arm_counts_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM arm_counts;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER traces_arm_counts_insert AFTER INSERT ON traces
  REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION tracegate_arm_counts_insert();
--> statement-breakpoint
CREATE TRIGGER traces_arm_counts_delete AFTER DELETE ON traces
  REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT EXECUTE FUNCTION tracegate_arm_counts_delete();
--> statement-breakpoint
CREATE TRIGGER traces_arm_counts_truncate AFTER TRUNCATE ON traces
  FOR EACH STATEMENT EXECUTE FUNCTION tracegate_arm_counts_truncate();
--> statement-breakpoint
INSERT INTO arm_counts (query_class, model_key, source, count)
SELECT query_class, model_key, source, COUNT(*) FROM traces GROUP BY 1, 2, 3;
--> statement-breakpoint
-- The per-arm index covers what a policy sync reads of an arm's newest traces (drizzle's schema
-- cannot say INCLUDE), so those reads are index-only scans; autovacuum keeps the newest pages
-- all-visible sooner than its defaults would on an insert-only table.
DROP INDEX "traces_class_model_seq_idx";
--> statement-breakpoint
CREATE INDEX "traces_class_model_seq_idx" ON "traces" USING btree ("query_class", "model_key", "seq")
  INCLUDE ("id", "outcome", "feedback", "source", "cost_usd", "latency_ms", "time");
--> statement-breakpoint
ALTER TABLE "traces" SET (autovacuum_vacuum_insert_threshold = 10000, autovacuum_vacuum_insert_scale_factor = 0.01);
