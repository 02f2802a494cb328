import { defineConfig } from 'drizzle-kit';

/** PostgreSQL migrations (`database.url`); `drizzle.config.ts` makes the SQLite ones. */
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/traces/schema-pg.ts',
  out: './drizzle/pg',
});
