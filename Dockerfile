# syntax=docker/dockerfile:1
# Multi-stage: build with dev dependencies, ship only the production ones and the compiled output.
# Node.js 26 is the Active LTS line (since October 2026).
ARG NODE_VERSION=26

FROM node:${NODE_VERSION}-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY schemas ./schemas
COPY src ./src
COPY dev ./dev
# dist/src is the gateway; dist/dev (the sample MCP server) is used by deploy/compose only.
RUN npm run build

FROM node:${NODE_VERSION}-slim AS runtime
# Keep in step with package.json's version (test/deploy/dockerfile.test.ts checks it).
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="mcp-auth-gateway" \
      org.opencontainers.image.description="OAuth 2.1 resource-server gateway for MCP servers" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
# HEALTHCHECK_URL: point it at the admin listener when the config has one
# (admin.listen, e.g. http://127.0.0.1:9090/healthz); /healthz is on the main listener too.
ENV NODE_ENV=production \
    HEALTHCHECK_URL=http://127.0.0.1:8080/healthz
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only; none of them needs an install script.
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist/src ./dist/src
COPY --from=build /app/dist/schemas ./dist/schemas
# Nothing is written at run time: works with a read-only root filesystem. The files above are
# owned by root: the gateway's user can read them, not change them. That user is the official
# image's `node` (1000), given by number so Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
EXPOSE 8080 9090
# SIGTERM starts the graceful shutdown (config `shutdown`): readiness fails, the listener
# drains, in-flight requests finish, then the process exits 0.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch(process.env.HEALTHCHECK_URL,{signal:AbortSignal.timeout(2500)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "/app/dist/src/bin.js"]
CMD ["serve", "--config", "/etc/mcp-auth-gateway/gateway.yaml"]
