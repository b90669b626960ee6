# The engagement-pipeline image: one image, every component; `docker run IMAGE sink redis` runs one.
#
# Two stages on Node 20 / Debian bookworm slim. The build stage installs the npm dependencies once —
# the Kafka client builds librdkafka from its sources there, linked against Debian's zstd, lz4, SASL
# and OpenSSL (CKJS_LINKING=dynamic, as scripts/ensure-deps.mjs does) — compiles src/ to dist/ and
# drops the devDependencies. The runtime stage gets the compiled JavaScript, the production
# node_modules and the run-time libraries only, and runs as an unprivileged user.
#
# `engage` (bin/engage.mjs) is the entrypoint, PID 1: it forwards SIGTERM to the component, which
# drains and commits before it exits (src/runtime/lifecycle.ts); give it the grace period to do so.
# Base images come from build arguments, defaulting to the official ones (the test builds local
# equivalents: docs/operations.md "Containers").
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential python3 ca-certificates \
      libzstd-dev liblz4-dev libsasl2-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV CKJS_LINKING=dynamic
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY scripts/copy-assets.mjs ./scripts/copy-assets.mjs
COPY src ./src
# Then only the Kafka client's compiled binding and librdkafka's shared libraries stay of its build:
# its sources and objects are ~260 MB the running client never reads.
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && cd node_modules/@confluentinc/kafka-javascript \
 && rm -rf deps/librdkafka build/deps/librdkafka build/deps/include build/deps/*.a build/obj.target build/Release/obj.target

FROM ${NODE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libzstd1 liblz4-1 libsasl2-2 libssl3 \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && groupadd --system --gid 10001 engage \
 && useradd --system --uid 10001 --gid engage --home-dir /app --shell /usr/sbin/nologin engage
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json .env.example ./
COPY bin ./bin
COPY sql ./sql
RUN ln -s /app/bin/engage.mjs /usr/local/bin/engage \
 && mkdir -p /app/data \
 && chown engage:engage /app/data
# Containers are reached from outside: the API and each component's health endpoint bind every address.
ENV NODE_ENV=production \
    API_HOST=0.0.0.0 \
    HEALTH_HOST=0.0.0.0 \
    DUCKDB_PATH=/app/data/warehouse.duckdb
USER 10001:10001
VOLUME ["/app/data"]
EXPOSE 8080
ENTRYPOINT ["engage"]
CMD ["--help"]
