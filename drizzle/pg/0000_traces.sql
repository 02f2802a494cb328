CREATE TABLE "purged_evidence" (
	"query_class" text NOT NULL,
	"model_key" text NOT NULL,
	"count" bigint NOT NULL,
	"successes" double precision NOT NULL,
	"quality" double precision NOT NULL,
	"feedback_count" double precision NOT NULL,
	"feedback_sum" double precision NOT NULL,
	"cost_sum" double precision NOT NULL,
	"cost_count" double precision NOT NULL,
	"latency_sum_ms" double precision NOT NULL,
	"last_time" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "traces" (
	"seq" bigserial PRIMARY KEY NOT NULL,
	"id" text NOT NULL,
	"time" bigint NOT NULL,
	"request_id" text NOT NULL,
	"query" text,
	"query_length" integer NOT NULL,
	"query_class" text NOT NULL,
	"model_key" text NOT NULL,
	"upstream_model" text NOT NULL,
	"routed" boolean NOT NULL,
	"reason" text NOT NULL,
	"attempt" integer NOT NULL,
	"outcome" text NOT NULL,
	"status" integer,
	"error" text,
	"latency_ms" double precision NOT NULL,
	"ttfb_ms" double precision,
	"prompt_tokens" integer,
	"completion_tokens" integer,
	"cost_usd" double precision,
	"feedback" double precision,
	"feedback_time" bigint,
	"feedback_comment" text,
	"key_name" text,
	"source" text DEFAULT 'live' NOT NULL,
	"instance_id" text
);
--> statement-breakpoint
CREATE UNIQUE INDEX "purged_evidence_arm_idx" ON "purged_evidence" USING btree ("query_class","model_key");--> statement-breakpoint
CREATE UNIQUE INDEX "traces_id_idx" ON "traces" USING btree ("id");--> statement-breakpoint
CREATE INDEX "traces_time_idx" ON "traces" USING btree ("time");--> statement-breakpoint
CREATE INDEX "traces_class_model_seq_idx" ON "traces" USING btree ("query_class","model_key","seq");