CREATE TABLE `trace_arms` (
	`query_class` text NOT NULL,
	`model_key` text NOT NULL,
	`seq` integer NOT NULL,
	`live` integer NOT NULL,
	PRIMARY KEY(`query_class`, `model_key`, `seq`)
) WITHOUT ROWID;
--> statement-breakpoint
CREATE TABLE `trace_arms_filled` (
	`id` integer PRIMARY KEY NOT NULL,
	`seq` integer NOT NULL
);
--> statement-breakpoint
INSERT INTO `trace_arms` (`query_class`, `model_key`, `seq`, `live`)
	SELECT `query_class`, `model_key`, `seq`, `source` = 'live' FROM `traces` ORDER BY `query_class`, `model_key`, `seq`;
--> statement-breakpoint
INSERT INTO `trace_arms_filled` (`id`, `seq`) VALUES (1, COALESCE((SELECT MAX(`seq`) FROM `traces`), 0));
--> statement-breakpoint
DROP INDEX `traces_class_model_seq_idx`;
