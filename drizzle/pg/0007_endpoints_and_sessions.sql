CREATE TABLE "sticky_sessions" (
	"session" text PRIMARY KEY NOT NULL,
	"model_key" text NOT NULL,
	"expires_at" bigint NOT NULL
);
--> statement-breakpoint
ALTER TABLE "traces" ADD COLUMN "endpoint" text DEFAULT 'chat' NOT NULL;--> statement-breakpoint
ALTER TABLE "traces" ADD COLUMN "response_id" text;--> statement-breakpoint
ALTER TABLE "traces" ADD COLUMN "request_bytes" integer;--> statement-breakpoint
CREATE INDEX "sticky_sessions_expires_idx" ON "sticky_sessions" USING btree ("expires_at");--> statement-breakpoint
CREATE INDEX "traces_response_id_idx" ON "traces" USING btree ("response_id") WHERE "traces"."response_id" IS NOT NULL;