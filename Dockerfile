# neonmeter: one static binary (neonmeter) plus the simulator (neonsim) for demos and tests.
# Build: docker build -t neonmeter --build-arg VERSION=$(git describe --always) .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/ ./cmd/neonmeter ./cmd/neonsim

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* && useradd --system --uid 10001 neonmeter
COPY --from=build /out/neonmeter /out/neonsim /usr/local/bin/
# No plan catalog ships: the example's price ids are placeholders that would bill nobody. Mount
# your catalog and set NEONMETER_PLANS_FILE; without one, serve only collects and says so.
ENV NEONMETER_LISTEN_ADDR=0.0.0.0:9464 \
    NEONMETER_LOG_FORMAT=json
USER neonmeter
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/neonmeter"]
CMD ["serve"]
