# The project's image: every function is a subcommand of the one CLI
# (`docker run hermes-router epp --help`, `... mock-vllm`, `... cache-indexer`).
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY proto proto
COPY src src
COPY functions functions
COPY test/bench test/bench
COPY test/helpers test/helpers
RUN npm run build && npm prune --omit=dev

FROM node:20-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY bin bin
COPY proto proto
COPY examples examples
# The node image's unprivileged user.
USER node
ENTRYPOINT ["node", "bin/hermes-router.js"]
CMD ["--help"]
