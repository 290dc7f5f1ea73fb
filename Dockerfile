# syntax=docker/dockerfile:1
# Parley server image. Build: docker build -t parley .
FROM node:20-bookworm-slim AS build
WORKDIR /app
# Only used when mediasoup's prebuilt worker cannot be downloaded (the postinstall then builds it).
RUN apt-get update && apt-get install -y --no-install-recommends python3 g++ meson ninja-build pkg-config patch \
      libssl-dev libuv1-dev libsrtp2-dev libabsl-dev libusrsctp-dev liburing-dev libflatbuffers-dev flatbuffers-compiler \
    && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# The npm workspaces' manifests (package-lock.json lists them; their sources are src/, copied below).
COPY packages/protocol/package.json ./packages/protocol/
COPY packages/sdk/package.json ./packages/sdk/
COPY packages/server/package.json packages/server/postinstall.mjs ./packages/server/
COPY scripts/mediasoup ./scripts/mediasoup
COPY scripts/system-packages.mjs ./scripts/system-packages.mjs
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# The demo page and the browser SDK bundle (esbuild), served at /.
COPY web ./web
COPY scripts/build-web.ts ./scripts/build-web.ts
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
# Runtime libraries of a source-built mediasoup worker (a downloaded one needs none of them).
RUN apt-get update && apt-get install -y --no-install-recommends \
      libssl3 libuv1 libsrtp2-1 libusrsctp2 libabsl20220623 liburing2 \
    && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production PORT=3000 HOST=0.0.0.0 RECORDINGS_DIR=/var/lib/parley/recordings
# PTT recordings (channels with "record": true) are the only files the server writes. /app belongs
# to root and the server runs as `node`, so they go to a directory of their own; mount a volume
# there, shared by every node that serves them (deploy/docker-compose.yml does).
RUN mkdir -p /var/lib/parley/recordings && chown -R node:node /var/lib/parley
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/web/dist ./web/dist
COPY package.json ./
USER node
EXPOSE 3000
# /health answers 200 only when the server is ready (503 while starting or draining).
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# Exec form so SIGTERM reaches node and triggers the graceful drain.
CMD ["node", "dist/server/main.js"]
