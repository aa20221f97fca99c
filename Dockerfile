# Multi-stage build: compile TypeScript and the sendfile addon (the full node image has
# python3, make and g++ for node-gyp), then a slim runtime with production deps only.
FROM node:20-bookworm AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY native ./native
RUN npm ci --no-audit --no-fund && test -f native/build/Release/sendfile.node
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production REGISTRY_CONFIG=config/docker.yaml
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY --from=build /app/native/build/Release/sendfile.node ./native/build/Release/sendfile.node
COPY config ./config
RUN mkdir -p /app/storage && chown -R node:node /app/storage
USER node
VOLUME ["/app/storage"]
EXPOSE 5000
HEALTHCHECK --interval=30s --timeout=3s CMD node -e "fetch('http://127.0.0.1:5000/_ping').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# One glibc malloc arena: the threads of libuv and V8 otherwise each keep arenas whose
# freed memory stays in RSS (bench-like sequence: VmHWM 81-84 -> 76 MiB).
ENV MALLOC_ARENA_MAX=1
CMD ["node", "--max-semi-space-size=1", "--optimize-for-size", "dist/src/main.js"]
