import { defineConfig } from 'drizzle-kit';

/** SQLite migrations (`database.path`); `drizzle.pg.config.ts` makes the PostgreSQL ones. */
export default defineConfig({
  dialect: 'sqlite',
  schema: './src/traces/schema.ts',
  out: './drizzle/sqlite',
});
