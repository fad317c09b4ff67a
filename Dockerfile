# syntax=docker/dockerfile:1
# swift-quota-proxy container image.
#
#   docker build -t swift-quota-proxy .
#   docker run -p 8081:8081 -v $PWD/conf/my.conf:/etc/swift-quota-proxy/proxy-server.conf:ro swift-quota-proxy
#
# Stage 1 compiles the TypeScript and keeps only the production dependencies; stage 2 is Node's slim runtime
# with nothing but dist/, node_modules/ and package.json, running as uid 10001. The base images are build
# arguments so that a build without access to an image registry can substitute a locally made Node 24 image
# (docker/verify-image.sh does; it builds docker/Dockerfile.prebuilt, whose runtime stage must stay the same as
# the one below: test/unit/deploy-files.test.ts compares them).
ARG BUILD_IMAGE=node:24-bookworm-slim
ARG RUNTIME_IMAGE=node:24-bookworm-slim

FROM ${BUILD_IMAGE} AS build
WORKDIR /build
# Dependencies first: this layer is reused as long as the lock file does not change.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && rm -rf dist/test

FROM ${RUNTIME_IMAGE} AS runtime
ENV NODE_ENV=production \
    SWIFT_QUOTA_PROXY_CONFIG=/etc/swift-quota-proxy/proxy-server.conf \
    SWIFT_QUOTA_PROXY_LISTEN=0.0.0.0:8081
RUN groupadd --gid 10001 swift-quota-proxy \
 && useradd --uid 10001 --gid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin swift-quota-proxy \
 && mkdir -p /etc/swift-quota-proxy
WORKDIR /app
COPY --from=build --chown=root:root /build/package.json ./package.json
COPY --from=build --chown=root:root /build/node_modules ./node_modules
COPY --from=build --chown=root:root /build/dist ./dist
USER 10001:10001
EXPOSE 8081
# No curl in the slim image: node itself asks /healthz on the port SWIFT_QUOTA_PROXY_LISTEN names.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "const l=process.env.SWIFT_QUOTA_PROXY_LISTEN||'';const p=l.slice(l.lastIndexOf(':')+1)||'8081';fetch('http://127.0.0.1:'+p+'/healthz',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
CMD ["node", "dist/src/main.js"]
