-- A `refused` attempt (a refused provider key, a rate limit, a request too big for the model) is no
-- quality evidence, whatever feedback it gets: the quality index and the triggers that keep
-- quality_record leave it out (QUALITY_EVIDENCE_ROW in src/traces/quality-evidence.ts). No stored trace
-- is 'refused' yet, so quality_record needs no recount. purged_evidence keeps, of the purged failures,
-- how many were refused.
ALTER TABLE `purged_evidence` ADD `refused` real DEFAULT 0 NOT NULL;
--> statement-breakpoint
DROP INDEX IF EXISTS `traces_quality_idx`;
--> statement-breakpoint
CREATE INDEX `traces_quality_idx` ON `traces` (`query_class`, `model_key`, `source`,
	(CASE WHEN outcome = 'success' THEN COALESCE(feedback_time, time) ELSE time END), `seq`, `outcome`, `feedback`, `feedback_source`)
	WHERE ("traces"."outcome" <> 'refused' AND ("traces"."outcome" <> 'success' OR "traces"."feedback" IS NOT NULL));
--> statement-breakpoint
DROP TRIGGER IF EXISTS `quality_record_update`;
--> statement-breakpoint
DROP TRIGGER IF EXISTS `quality_record_delete`;
--> statement-breakpoint
CREATE TRIGGER `quality_record_update` AFTER UPDATE OF `feedback`, `feedback_source`, `outcome`, `query_class`, `model_key`, `source` ON `traces`
WHEN ((old.outcome <> 'refused' AND (old.outcome <> 'success' OR old.feedback IS NOT NULL)) OR (new.outcome <> 'refused' AND (new.outcome <> 'success' OR new.feedback IS NOT NULL))) AND old.`seq` <= (SELECT `seq` FROM `trace_arms_filled` WHERE `id` = 1)
BEGIN
	UPDATE quality_record SET
		observations = observations - 1,
		failures = failures - (old.outcome <> 'success'),
		rated_count = rated_count - (old.outcome = 'success' AND COALESCE(old.feedback_source, 'human') IN ('human', 'offline')),
		rated_sum = CASE WHEN rated_count - (old.outcome = 'success' AND COALESCE(old.feedback_source, 'human') IN ('human', 'offline')) = 0 THEN 0 ELSE rated_sum - CASE WHEN old.outcome = 'success' AND COALESCE(old.feedback_source, 'human') IN ('human', 'offline') THEN old.feedback ELSE 0 END END,
		judge_count = judge_count - (old.outcome = 'success' AND COALESCE(old.feedback_source, 'human') = 'judge'),
		judge_sum = CASE WHEN judge_count - (old.outcome = 'success' AND COALESCE(old.feedback_source, 'human') = 'judge') = 0 THEN 0 ELSE judge_sum - CASE WHEN old.outcome = 'success' AND COALESCE(old.feedback_source, 'human') = 'judge' THEN old.feedback ELSE 0 END END,
		implicit_count = implicit_count - (old.outcome = 'success' AND COALESCE(old.feedback_source, 'human') = 'implicit'),
		implicit_sum = CASE WHEN implicit_count - (old.outcome = 'success' AND COALESCE(old.feedback_source, 'human') = 'implicit') = 0 THEN 0 ELSE implicit_sum - CASE WHEN old.outcome = 'success' AND COALESCE(old.feedback_source, 'human') = 'implicit' THEN old.feedback ELSE 0 END END
	WHERE query_class = old.query_class AND model_key = old.model_key AND source = old.source AND (old.outcome <> 'refused' AND (old.outcome <> 'success' OR old.feedback IS NOT NULL));
	INSERT INTO quality_record (query_class, model_key, source, observations, failures, rated_count, rated_sum, judge_count, judge_sum, implicit_count, implicit_sum)
	SELECT
		new.query_class, new.model_key, new.source, 1, new.outcome <> 'success',
		new.outcome = 'success' AND COALESCE(new.feedback_source, 'human') IN ('human', 'offline'),
		CASE WHEN new.outcome = 'success' AND COALESCE(new.feedback_source, 'human') IN ('human', 'offline') THEN new.feedback ELSE 0 END,
		new.outcome = 'success' AND COALESCE(new.feedback_source, 'human') = 'judge',
		CASE WHEN new.outcome = 'success' AND COALESCE(new.feedback_source, 'human') = 'judge' THEN new.feedback ELSE 0 END,
		new.outcome = 'success' AND COALESCE(new.feedback_source, 'human') = 'implicit',
		CASE WHEN new.outcome = 'success' AND COALESCE(new.feedback_source, 'human') = 'implicit' THEN new.feedback ELSE 0 END
	WHERE (new.outcome <> 'refused' AND (new.outcome <> 'success' OR new.feedback IS NOT NULL))
	ON CONFLICT (query_class, model_key, source) DO UPDATE SET
		observations = observations + 1, failures = failures + excluded.failures,
		rated_count = rated_count + excluded.rated_count, rated_sum = rated_sum + excluded.rated_sum,
		judge_count = judge_count + excluded.judge_count, judge_sum = judge_sum + excluded.judge_sum,
		implicit_count = implicit_count + excluded.implicit_count, implicit_sum = implicit_sum + excluded.implicit_sum;
END;
--> statement-breakpoint
CREATE TRIGGER `quality_record_delete` AFTER DELETE ON `traces`
WHEN (old.outcome <> 'refused' AND (old.outcome <> 'success' OR old.feedback IS NOT NULL)) AND old.`seq` <= (SELECT `seq` FROM `trace_arms_filled` WHERE `id` = 1)
BEGIN
	UPDATE quality_record SET
		observations = observations - 1,
		failures = failures - (old.outcome <> 'success'),
		rated_count = rated_count - (old.outcome = 'success' AND COALESCE(old.feedback_source, 'human') IN ('human', 'offline')),
		rated_sum = CASE WHEN rated_count - (old.outcome = 'success' AND COALESCE(old.feedback_source, 'human') IN ('human', 'offline')) = 0 THEN 0 ELSE rated_sum - CASE WHEN old.outcome = 'success' AND COALESCE(old.feedback_source, 'human') IN ('human', 'offline') THEN old.feedback ELSE 0 END END,
		judge_count = judge_count - (old.outcome = 'success' AND COALESCE(old.feedback_source, 'human') = 'judge'),
		judge_sum = CASE WHEN judge_count - (old.outcome = 'success' AND COALESCE(old.feedback_source, 'human') = 'judge') = 0 THEN 0 ELSE judge_sum - CASE WHEN old.outcome = 'success' AND COALESCE(old.feedback_source, 'human') = 'judge' THEN old.feedback ELSE 0 END END,
		implicit_count = implicit_count - (old.outcome = 'success' AND COALESCE(old.feedback_source, 'human') = 'implicit'),
		implicit_sum = CASE WHEN implicit_count - (old.outcome = 'success' AND COALESCE(old.feedback_source, 'human') = 'implicit') = 0 THEN 0 ELSE implicit_sum - CASE WHEN old.outcome = 'success' AND COALESCE(old.feedback_source, 'human') = 'implicit' THEN old.feedback ELSE 0 END END
	WHERE query_class = old.query_class AND model_key = old.model_key AND source = old.source;
END;
