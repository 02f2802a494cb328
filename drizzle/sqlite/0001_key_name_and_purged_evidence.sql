CREATE TABLE `purged_evidence` (
	`query_class` text NOT NULL,
	`model_key` text NOT NULL,
	`count` integer NOT NULL,
	`successes` real NOT NULL,
	`quality` real NOT NULL,
	`feedback_count` real NOT NULL,
	`feedback_sum` real NOT NULL,
	`cost_sum` real NOT NULL,
	`cost_count` real NOT NULL,
	`latency_sum_ms` real NOT NULL,
	`last_time` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `purged_evidence_arm_idx` ON `purged_evidence` (`query_class`,`model_key`);--> statement-breakpoint
ALTER TABLE `traces` ADD `key_name` text;