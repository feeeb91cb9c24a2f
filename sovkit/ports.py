"""The ports a site's hosts listen on: one place for the firewall, the roles, the Pulumi security groups and
the endpoints sovkit prints."""

GATEWAY = 443  # the TLS gateway (hosts mode): the OpenAI-compatible API, per-tenant keys
PROMETHEUS = 9090  # hosts mode: Prometheus on the first serving node
NODE_EXPORTER = 9100  # every host: scraped by Prometheus from inside the site
