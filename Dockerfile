# One image for every process kind: `node api/dist/main.js` (the default CMD), `node worker/dist/main.js`
# or `node scheduler/dist/main.js`.
FROM node:20-bookworm-slim AS build
WORKDIR /app
ENV ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json .npmrc tsconfig.base.json tsconfig.json ./
COPY contracts/package.json contracts/
COPY shared/package.json shared/
COPY api/package.json api/
COPY worker/package.json worker/
COPY scheduler/package.json scheduler/
COPY cli/package.json cli/
RUN npm ci
COPY contracts contracts
COPY shared shared
COPY api api
COPY worker worker
COPY scheduler scheduler
COPY cli cli
RUN npx tsc -b && npm prune --omit=dev

FROM node:20-bookworm-slim
# One API process per container (scale with replicas); API_PROCESSES=N runs N sharing the port.
ENV NODE_ENV=production ONNXRUNTIME_NODE_INSTALL=skip HOST=0.0.0.0 MODELS_DIR=/app/models API_PROCESSES=1
WORKDIR /app
COPY --from=build --chown=node:node /app/node_modules node_modules
COPY --from=build --chown=node:node /app/package.json ./
COPY --from=build --chown=node:node /app/contracts/package.json contracts/
COPY --from=build --chown=node:node /app/contracts/dist contracts/dist
COPY --from=build --chown=node:node /app/shared/package.json shared/
COPY --from=build --chown=node:node /app/shared/dist shared/dist
COPY --from=build --chown=node:node /app/api/package.json api/
COPY --from=build --chown=node:node /app/api/dist api/dist
# The console: its compiled modules and its HTML shell and stylesheet (api/src/routes/console-routes.ts).
COPY --from=build --chown=node:node /app/api/console/dist api/console/dist
COPY --from=build --chown=node:node /app/api/console/static api/console/static
COPY --from=build --chown=node:node /app/worker/package.json worker/
COPY --from=build --chown=node:node /app/worker/dist worker/dist
COPY --from=build --chown=node:node /app/scheduler/package.json scheduler/
COPY --from=build --chown=node:node /app/scheduler/dist scheduler/dist
COPY --from=build --chown=node:node /app/cli/package.json cli/
COPY --from=build --chown=node:node /app/cli/dist cli/dist
COPY --chown=node:node models models
USER node
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/livez').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "api/dist/main.js"]
