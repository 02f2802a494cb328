ALTER TABLE `purged_evidence` ADD `rated_count` real DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `purged_evidence` ADD `rated_sum` real DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `purged_evidence` ADD `judge_count` real DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `purged_evidence` ADD `judge_sum` real DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `purged_evidence` ADD `implicit_count` real DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `purged_evidence` ADD `implicit_sum` real DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `traces` ADD `feedback_source` text;--> statement-breakpoint
-- Feedback stored so far came with evaluation results (offline traces) or from POST /feedback.
UPDATE `traces` SET `feedback_source` = CASE WHEN `source` = 'offline' THEN 'offline' ELSE 'human' END
	WHERE `feedback` IS NOT NULL;
--> statement-breakpoint
-- What was purged so far kept no sources: its feedback counts as a person's (failed traces' included).
UPDATE `purged_evidence` SET `rated_count` = `feedback_count`, `rated_sum` = `feedback_sum`;
