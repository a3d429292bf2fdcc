"""The SDK's own HTTP transports: connection pools, the HTTP/1.1 parser, proxy and TLS set-up."""
