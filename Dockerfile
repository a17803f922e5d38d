# procore-token-mcp as a container image: stdio by default, HTTP by arguments.
#
#   docker build -t ghcr.io/procore-token-mcp/procore-token-mcp:0.1.0 .
#   stdio (what MCP clients launch; no credentials needed to start and list the tools):
#     docker run -i --rm -e PROCORE_CLIENT_ID -e PROCORE_CLIENT_SECRET ghcr.io/procore-token-mcp/procore-token-mcp:0.1.0
#   streamable HTTP at /mcp and old SSE at /sse, published on the host's loopback only:
#     docker run --rm -p 127.0.0.1:8722:8722 -e MCP_AUTH_TOKEN ghcr.io/procore-token-mcp/procore-token-mcp:0.1.0 \
#       --transport http --listen 0.0.0.0:8722 --auth-token "$MCP_AUTH_TOKEN"

# The base images are arguments so CI can build with local stand-ins (tests/image/run.sh);
# the defaults are the pinned images a release uses.
ARG BUILDER_IMAGE=rust:1.95.0-slim-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

# Build: a pinned Rust toolchain (its gcc builds ring's C and assembly), on Debian 12 like the
# runtime below, so the binary links against the same glibc. The whole context goes in:
# .dockerignore admits only what cargo reads (every manifest, target and workspace member), so
# a new target or member cannot be forgotten here.
FROM ${BUILDER_IMAGE} AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin procore-token-mcp

# Run: glibc, libgcc and the CA certificates (rustls checks Procore's certificate against
# the system store), a non-root user, no shell and no package manager.
FROM ${RUNTIME_IMAGE}
LABEL io.modelcontextprotocol.server.name="io.github.procore-token-mcp/procore-token-mcp" \
      org.opencontainers.image.title="procore-token-mcp" \
      org.opencontainers.image.description="MCP server that obtains and renews Procore OAuth 2.0 access tokens" \
      org.opencontainers.image.source="https://github.com/procore-token-mcp/procore-token-mcp" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="MIT"
COPY --from=build /src/target/release/procore-token-mcp /usr/local/bin/procore-token-mcp
USER nonroot:nonroot
EXPOSE 8722
ENTRYPOINT ["/usr/local/bin/procore-token-mcp"]
