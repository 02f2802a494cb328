ALTER TABLE "purged_evidence" ADD COLUMN "rated_count" double precision DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "purged_evidence" ADD COLUMN "rated_sum" double precision DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "purged_evidence" ADD COLUMN "judge_count" double precision DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "purged_evidence" ADD COLUMN "judge_sum" double precision DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "purged_evidence" ADD COLUMN "implicit_count" double precision DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "purged_evidence" ADD COLUMN "implicit_sum" double precision DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "traces" ADD COLUMN "feedback_source" text;--> statement-breakpoint
-- Feedback stored so far came with evaluation results (offline traces) or from POST /feedback.
UPDATE "traces" SET "feedback_source" = CASE WHEN "source" = 'offline' THEN 'offline' ELSE 'human' END
	WHERE "feedback" IS NOT NULL;
--> statement-breakpoint
-- What was purged so far kept no sources: its feedback counts as a person's (failed traces' included).
UPDATE "purged_evidence" SET "rated_count" = "feedback_count", "rated_sum" = "feedback_sum";
--> statement-breakpoint
-- The per-arm index covers what a policy sync reads of an arm's newest traces, the feedback's source
-- now among it, so those reads stay index-only scans.
DROP INDEX "traces_class_model_seq_idx";
--> statement-breakpoint
CREATE INDEX "traces_class_model_seq_idx" ON "traces" USING btree ("query_class", "model_key", "seq")
  INCLUDE ("id", "outcome", "feedback", "feedback_source", "source", "cost_usd", "latency_ms", "time");
