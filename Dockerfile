# syntax=docker/dockerfile:1
# Two images from one build: the default target (`aerostat controller`,
# `aerostat store`, every command) and --target agent, the node agent's
# (`aerostat agent`, `update`, `register`, `promote`: -tags agentonly
# leaves out the store, the controller and the AWS SDK). Build: make docker-build
# (IMG=…, AGENT_IMG=…, VERSION=…).

# The builder runs on the build host's platform and cross-compiles, so a
# multi-platform build (docker buildx --platform linux/amd64,linux/arm64)
# needs no emulation.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS=linux
ARG TARGETARCH
ARG VERSION=dev
WORKDIR /src
# Dependencies first: this layer is reused until go.mod or go.sum changes.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
# Static (CGO_ENABLED=0) so it runs on distroless/static; -trimpath keeps
# build paths out of the binary.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/aerostat ./cmd/aerostat && \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -tags agentonly -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/aerostat-agent ./cmd/aerostat

# The agent image: same base, user and entrypoint path as the full one (the
# DaemonSet sets the user it needs); the binary answers to `aerostat`.
FROM gcr.io/distroless/static-debian12:nonroot AS agent
ARG VERSION=dev
LABEL org.opencontainers.image.title="aerostat-agent" \
      org.opencontainers.image.description="Aerostat node agent: keeps /etc/hosts current" \
      org.opencontainers.image.source="https://github.com/aerostat-io/aerostat" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/aerostat-agent /usr/local/bin/aerostat
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/aerostat"]

# distroless static: no shell, no package manager, CA certificates and tzdata
# only. Runs as nonroot (65532); the agent DaemonSet overrides the user (see
# charts/aerostat/README.md).
FROM gcr.io/distroless/static-debian12:nonroot AS full
ARG VERSION=dev
LABEL org.opencontainers.image.title="aerostat" \
      org.opencontainers.image.description="Stable human names for cloud machines, in every /etc/hosts" \
      org.opencontainers.image.source="https://github.com/aerostat-io/aerostat" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/aerostat /usr/local/bin/aerostat
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/aerostat"]
