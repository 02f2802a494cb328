CREATE TABLE `trace_stats` (
	`query_class` text NOT NULL,
	`model_key` text NOT NULL,
	`instance_id` text,
	`count` integer NOT NULL,
	`successes` integer NOT NULL,
	`feedback_count` integer NOT NULL,
	`feedback_sum` real NOT NULL,
	`prompt_tokens` integer NOT NULL,
	`completion_tokens` integer NOT NULL,
	`cost_usd` real NOT NULL,
	`last_time` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `trace_stats_group_idx` ON `trace_stats` (`query_class`,`model_key`,`instance_id`);
--> statement-breakpoint
INSERT INTO `trace_stats`
	SELECT `query_class`, `model_key`, `instance_id`, COUNT(*), SUM(`outcome` = 'success'), SUM(`feedback` IS NOT NULL),
		COALESCE(SUM(`feedback`), 0), COALESCE(SUM(`prompt_tokens`), 0), COALESCE(SUM(`completion_tokens`), 0),
		COALESCE(SUM(`cost_usd`), 0), MAX(`time`)
	FROM `traces` WHERE `seq` <= COALESCE((SELECT `seq` FROM `trace_arms_filled` WHERE `id` = 1), 0)
	GROUP BY `query_class`, `model_key`, `instance_id`;
--> statement-breakpoint
CREATE TABLE `__new_trace_arms` (
	`query_class` text NOT NULL,
	`model_key` text NOT NULL,
	`seq` integer NOT NULL,
	`live` integer NOT NULL,
	`latency_ms` real NOT NULL,
	PRIMARY KEY(`query_class`, `model_key`, `seq`)
) WITHOUT ROWID;
--> statement-breakpoint
INSERT INTO `__new_trace_arms` (`query_class`, `model_key`, `seq`, `live`, `latency_ms`)
	SELECT `query_class`, `model_key`, `seq`, `source` = 'live', `latency_ms` FROM `traces`
	WHERE `seq` <= COALESCE((SELECT `seq` FROM `trace_arms_filled` WHERE `id` = 1), 0)
	ORDER BY `query_class`, `model_key`, `seq`;
--> statement-breakpoint
DROP TABLE `trace_arms`;
--> statement-breakpoint
ALTER TABLE `__new_trace_arms` RENAME TO `trace_arms`;
--> statement-breakpoint
CREATE TRIGGER `trace_stats_feedback` AFTER UPDATE OF `feedback` ON `traces`
WHEN old.`seq` <= (SELECT `seq` FROM `trace_arms_filled` WHERE `id` = 1)
BEGIN
	UPDATE `trace_stats` SET
		`feedback_count` = `feedback_count` + (new.`feedback` IS NOT NULL) - (old.`feedback` IS NOT NULL),
		`feedback_sum` = `feedback_sum` + COALESCE(new.`feedback`, 0) - COALESCE(old.`feedback`, 0)
	WHERE `query_class` = old.`query_class` AND `model_key` = old.`model_key` AND `instance_id` IS old.`instance_id`;
END;
