# neonmeter's images, from one build stage:
#   docker build -t neonmeter --build-arg VERSION=$(git describe --always) .   (make image)
#   docker build -t neonmeter-sim --target neonsim .                          (compose's simulator)
# The binaries are built exactly as `make image-binary` builds them (static, -trimpath, the
# Makefile's LDFLAGS); deploy/image_test.go keeps the two commands equal.
ARG GO_VERSION=1.26
FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-X main.version=${VERSION}" -o /out/ ./cmd/neonmeter ./cmd/neonsim
# The final stages have no shell or useradd: give them a passwd entry for the non-root user and
# a writable /tmp from here.
RUN echo 'neonmeter:x:10001:10001:neonmeter:/nonexistent:/sbin/nologin' > /out/passwd \
    && echo 'neonmeter:x:10001:' > /out/group && mkdir -m 1777 /out/tmp

# The Neon simulator, for the compose stack and manual tests; never in the production image.
FROM scratch AS neonsim
COPY --from=build /out/passwd /etc/passwd
COPY --from=build /out/group /etc/group
COPY --from=build /out/neonsim /usr/local/bin/neonsim
USER 10001:10001
EXPOSE 8090
ENTRYPOINT ["/usr/local/bin/neonsim"]
CMD ["--addr", "0.0.0.0:8090"]

# The production image (the default target): neonmeter alone, CA certificates for Neon, Stripe
# and ClickHouse over TLS, no shell.
FROM scratch AS neonmeter
ARG VERSION=dev
LABEL org.opencontainers.image.title="neonmeter" \
      org.opencontainers.image.description="Meters Neon projects: hourly consumption into ClickHouse, billing through Stripe, plan enforcement" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/neonmeter/neonmeter"
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/passwd /etc/passwd
COPY --from=build /out/group /etc/group
COPY --from=build /out/tmp /tmp
COPY --from=build /out/neonmeter /usr/local/bin/neonmeter
# No plan catalog ships: the example's price ids are placeholders that would bill nobody. Mount
# your catalog and point the plans-file setting at it; without one, serve only collects and says so.
ENV NEONMETER_LISTEN_ADDR=0.0.0.0:9464 \
    NEONMETER_LOG_FORMAT=json
USER 10001:10001
EXPOSE 9464
# Exec form, no shell: the binary asks its own /healthz on NEONMETER_LISTEN_ADDR.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["/usr/local/bin/neonmeter", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/neonmeter"]
CMD ["serve"]
