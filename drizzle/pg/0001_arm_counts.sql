CREATE TABLE "arm_counts" (
	"query_class" text NOT NULL,
	"model_key" text NOT NULL,
	"source" text NOT NULL,
	"count" bigint NOT NULL,
	CONSTRAINT "arm_counts_query_class_model_key_source_pk" PRIMARY KEY("query_class","model_key","source")
);
