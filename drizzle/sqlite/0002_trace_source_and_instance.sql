ALTER TABLE `traces` ADD `source` text DEFAULT 'live' NOT NULL;--> statement-breakpoint
ALTER TABLE `traces` ADD `instance_id` text;