# kfleet's image: the worker and the operator CLI (starter: ChatOps server,
# overview page, the attributes Job), static binaries on distroless, run as
# a non-root user. The Kubernetes manifests (deploy/k8s) pick the binary
# with `command`; the default is the worker.
#
#   docker build -t kfleet .
#
# The binaries are built by `make static-binaries`, the same target `make
# image-check` (part of make lint) builds and checks for static linking:
# the flags live in one place. internal/deploycheck checks this file.

# The build stage's Go is go.mod's (deploycheck enforces it).
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
# Modules first: a change of code alone reuses this layer.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN make static-binaries STATIC_OUT=/out

# distroless static: no shell, no libc, CA certificates and tzdata only; its
# nonroot variant's user is 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/worker /usr/local/bin/worker
COPY --from=build /out/starter /usr/local/bin/starter
# The SSM documents the worker runs on brokers' hosts, for reference (they
# are created in AWS SSM from deploy/ssm, not read from the image).
COPY deploy/ssm /usr/share/kfleet/ssm
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/worker"]
