# The registry in a container: README, "Running in a container". Builds with the legacy
# builder and with BuildKit, and needs no network but the npm registry (node-gyp uses the
# Node.js headers of the base image).

# 1. Build: the sendfile addon (the full node image has python3, make and g++ for node-gyp)
#    and the TypeScript; then what the runtime needs is gathered in /out.
FROM node:20-bookworm AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY native ./native
# nodedir: node-gyp builds against the headers the official node images ship in
# /usr/local/include/node (they match the image's node exactly) instead of downloading them
# from nodejs.org, which an offline or mirrored build cannot reach. The install script only
# warns when the addon does not build; the image needs it.
RUN npm_config_nodedir=/usr/local npm ci --no-audit --no-fund \
 && test -f native/build/Release/sendfile.node
# The rest of the context (.dockerignore lets in only what the image is made of): the
# TypeScript, config/ and docker/.
COPY . ./
# prune --omit=optional as well: typescript is an optional peer of valibot, so the lockfile
# marks it devOptional, which --omit=dev alone keeps (31 MB of compiler). No production
# dependency is optional (test/image checks that the runtime holds no dev package).
RUN npm run build \
 && npm prune --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund \
 && mkdir -p /out/native/build/Release /out/dist /out/storage \
 && find node_modules -mindepth 1 -maxdepth 1 -type d -empty -delete \
 && cp -a package.json node_modules config docker /out/ \
 && cp -a dist/src /out/dist/ \
 && cp native/build/Release/sendfile.node /out/native/build/Release/ \
 && chown node:node /out/storage

# 2. Runtime: the slim image (no compiler) with the compiled code, the addon and the
#    production dependencies, in one step: with the legacy builder every step (even ENV)
#    makes a container, and under the vfs storage driver that copies all the image's files.
FROM node:20-bookworm-slim
WORKDIR /app
# MALLOC_ARENA_MAX=1: one glibc malloc arena; the threads of libuv and V8 otherwise each keep
# arenas whose freed memory stays in RSS (bench-like sequence: VmHWM 81-84 -> 76 MiB).
ENV NODE_ENV=production REGISTRY_CONFIG=config/docker.yaml MALLOC_ARENA_MAX=1
COPY --from=build /out/ ./
VOLUME ["/app/storage"]
EXPOSE 5000
# The first check runs one interval after the start; failures within the start period do
# not count (opening a large store). It asks the port the configuration sets.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["/app/docker/healthcheck.sh"]
# Starts as root only to make the storage volume node's, then runs the registry as node
# (uid 1000) with no capabilities: see docker/entrypoint.sh.
ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["node", "--max-semi-space-size=1", "--optimize-for-size", "dist/src/main.js"]
