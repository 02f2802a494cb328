# tracegate in a container: docs/docker.md says how to build, configure and run it.

# Build: all dependencies (TypeScript), and the compilers better-sqlite3 needs when it cannot
# download a prebuilt addon.
FROM node:20-bookworm-slim AS build
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
# package-lock.json is written by npm 11; the npm 10 of Node 20's image rejects it as out of sync.
RUN npm install -g npm@11.19.1 --no-audit --no-fund
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the package's own `prepare` (a build) needs the sources, copied below;
# better-sqlite3's install script (its native addon) runs on its own.
RUN npm ci --ignore-scripts --no-audit --no-fund && npm rebuild better-sqlite3
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

# Run: production dependencies, the compiled gateway, its migrations and the dashboard's files.
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY drizzle ./drizzle
COPY src/http/dashboard/static ./src/http/dashboard/static
COPY docker/config.json /etc/tracegate/config.json
# The traces (SQLite) live in /data; the process runs as the image's unprivileged `node` user (uid 1000).
RUN mkdir -p /data && chown node:node /data
VOLUME /data
WORKDIR /data
USER node
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "/app/dist/cli.js"]
CMD ["serve", "--config", "/etc/tracegate/config.json", "--host", "0.0.0.0", "--port", "8080"]
