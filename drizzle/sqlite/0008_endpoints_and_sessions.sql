CREATE TABLE `sticky_sessions` (
	`session` text PRIMARY KEY NOT NULL,
	`model_key` text NOT NULL,
	`expires_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `sticky_sessions_expires_idx` ON `sticky_sessions` (`expires_at`);--> statement-breakpoint
ALTER TABLE `traces` ADD `endpoint` text DEFAULT 'chat' NOT NULL;--> statement-breakpoint
ALTER TABLE `traces` ADD `response_id` text;--> statement-breakpoint
ALTER TABLE `traces` ADD `request_bytes` integer;--> statement-breakpoint
CREATE INDEX `traces_response_id_idx` ON `traces` (`response_id`) WHERE "traces"."response_id" IS NOT NULL;