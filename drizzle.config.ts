import { defineConfig } from 'drizzle-kit';

export default defineConfig({
  dialect: 'sqlite',
  schema: './src/traces/schema.ts',
  out: './drizzle',
});
