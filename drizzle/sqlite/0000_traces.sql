CREATE TABLE `traces` (
	`seq` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`id` text NOT NULL,
	`time` integer NOT NULL,
	`request_id` text NOT NULL,
	`query` text,
	`query_length` integer NOT NULL,
	`query_class` text NOT NULL,
	`model_key` text NOT NULL,
	`upstream_model` text NOT NULL,
	`routed` integer NOT NULL,
	`reason` text NOT NULL,
	`attempt` integer NOT NULL,
	`outcome` text NOT NULL,
	`status` integer,
	`error` text,
	`latency_ms` real NOT NULL,
	`ttfb_ms` real,
	`prompt_tokens` integer,
	`completion_tokens` integer,
	`cost_usd` real,
	`feedback` real,
	`feedback_time` integer,
	`feedback_comment` text
);
--> statement-breakpoint
CREATE UNIQUE INDEX `traces_id_idx` ON `traces` (`id`);--> statement-breakpoint
CREATE INDEX `traces_time_idx` ON `traces` (`time`);--> statement-breakpoint
CREATE INDEX `traces_class_model_seq_idx` ON `traces` (`query_class`,`model_key`,`seq`);