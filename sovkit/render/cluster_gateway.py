"""The tenant gateway in the cluster: the same nginx + njs gateway as hosts mode, from the same sources.

Its server configuration is the gateway role's own template (roles/gateway/templates/.../sovkit-gateway.conf.j2) and
its tenants the role's tenants.json.j2, both rendered here with Jinja2 from the variables `role_vars.gateway_vars`
renders for hosts mode too; its router is the role's gateway.js, read as it is. Only what differs in a pod is set
here: the model servers are the serving chart's Services, nginx's own main file runs it unprivileged with a
read-only root, and Prometheus scrapes the models directly (no /metrics through the gateway, so no mtail).

The Kubernetes objects are plain manifests (dicts) so that the Pulumi program creates exactly what the tests
validate against Kubernetes' schemas and scan.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path

import jinja2

from sovkit.config.site import SiteConfig
from sovkit.render import cluster
from sovkit.render.role_vars import gateway_vars
from sovkit.stacks import project_root

ROLE = project_root(Path(__file__).resolve().parent) / "roles" / "gateway"
SERVER_TEMPLATE = ROLE / "templates" / "etc" / "nginx" / "conf.d" / "sovkit-gateway.conf.j2"
TENANTS_TEMPLATE = ROLE / "templates" / "etc" / "nginx" / "sovkit" / "tenants.json.j2"
ROUTER = ROLE / "files" / "etc" / "nginx" / "sovkit" / "gateway.js"

NAME = "sovkit-gateway"  # Deployment, Service, Ingress; the serving chart's NetworkPolicy admits these pods
# nginx, unprivileged (uid 101, listens above 1024), with the njs module; mirror it into containerRegistry.
IMAGE = ("nginxinc/nginx-unprivileged", "1.28.0-alpine")
UID = 10101  # above 10000 (no host user shares it); the unprivileged image runs nginx as any user
REPLICAS = 2
TLS_SECRET = "sovkit-gateway-tls"  # kubernetes.io/tls, signed by the site CA Pulumi keeps; the pod and the Ingress
CONFIG_MAP = "sovkit-gateway-config"  # nginx.conf, sovkit-gateway.conf, gateway.js
TENANTS_SECRET = "sovkit-tenant-keys"  # tenants.json (the SHA-256 of each tenant's key) and upstream-auth.conf
TLS_DIR = "/etc/sovkit/tls"
NJS_DIR = "/etc/nginx/sovkit"  # the template's js_path, tenants.json and upstream-auth.conf
LOG_DIR = "/var/log/sovkit/gateway"  # access.json and error.log link to the container's stdout and stderr
SERVICE_PORT = 443
POD_PORT = 8443  # the gateway role's default listen port: above 1024, so nginx needs no capability in the pod
MANAGED = "Managed by sovkit (Pulumi, kubernetes mode): local changes are overwritten."

# nginx's main file for a pod: the njs module, temporary files and the pid under /tmp (an emptyDir), logs to the
# container's streams, and the gateway's server from conf.d.
NGINX_CONF = """# {managed}
load_module modules/ngx_http_js_module.so;
worker_processes auto;
pid /tmp/nginx.pid;
error_log /dev/stderr warn;
events {{
    worker_connections 4096;
}}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    client_body_temp_path /tmp/client_temp;
    proxy_temp_path /tmp/proxy_temp;
    fastcgi_temp_path /tmp/fastcgi_temp;
    uwsgi_temp_path /tmp/uwsgi_temp;
    scgi_temp_path /tmp/scgi_temp;
    sendfile on;
    keepalive_timeout 65;
    # the cluster's DNS names the model servers' Services
    include /etc/nginx/conf.d/*.conf;
}}
"""


def model_upstreams(site: SiteConfig) -> dict[str, str]:
    """{served model: its Service in the cluster, host:port} (the serving chart names it <release>-<model>)."""
    return {name: f"{cluster.SERVING_RELEASE}-{name}.{cluster.SERVING_NAMESPACE}.svc.cluster.local:"
                  f"{cluster.SERVING_PORT}" for name in sorted(site.serving.models)}


def template_vars(site: SiteConfig) -> dict:
    """The gateway role's variables for the cluster: hosts mode's (gateway_vars) with the pod's paths."""
    return {
        **_role_defaults(),
        **gateway_vars(site, model_upstreams(site)),
        "ansible_managed": MANAGED,
        "gateway_listen_port": POD_PORT,
        "gateway_server_name": site.platform.gateway_hostname or "_",
        "gateway_tls_dir": TLS_DIR,
        "gateway_log_dir": LOG_DIR,
        "gateway_metrics_allowed_cidrs": [],  # Prometheus scrapes each model's Service itself
    }


@cache
def _role_defaults() -> dict:
    import yaml

    return yaml.safe_load((ROLE / "defaults" / "main.yml").read_text(encoding="utf-8"))


def _jinja() -> jinja2.Environment:
    # Ansible's template module: trim_blocks on, undefined variables an error, its to_json filter.
    env = jinja2.Environment(trim_blocks=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             autoescape=False)  # nginx configuration and JSON, not HTML
    env.filters["to_json"] = json.dumps
    return env


def server_conf(site: SiteConfig) -> str:
    """conf.d/sovkit-gateway.conf: the role's template with the cluster's variables."""
    return _jinja().from_string(SERVER_TEMPLATE.read_text(encoding="utf-8")).render(template_vars(site))


def tenants_json(site: SiteConfig, key_hashes: dict[str, str]) -> str:
    """tenants.json: the role's template with the tenants' key hashes (SHA-256, never a key)."""
    variables = template_vars(site) | {"gateway_tenant_key_hashes": key_hashes}
    return _jinja().from_string(TENANTS_TEMPLATE.read_text(encoding="utf-8")).render(variables)


def upstream_auth(key: str) -> str:
    """The include that hands the model servers the site's key (the same text the gateway role writes)."""
    return ("# Managed by sovkit (Pulumi, kubernetes mode): local changes are overwritten.\n"
            f'proxy_set_header Authorization "Bearer {key}";\n')


def key_hashes(keys: dict[str, str]) -> dict[str, str]:
    return {tenant: hashlib.sha256(key.encode()).hexdigest() for tenant, key in sorted(keys.items())}


def config_files(site: SiteConfig) -> dict[str, str]:
    """The gateway's ConfigMap data (no secret in it)."""
    return {"nginx.conf": NGINX_CONF.format(managed=MANAGED), "sovkit-gateway.conf": server_conf(site),
            "gateway.js": ROUTER.read_text(encoding="utf-8")}


def image(site: SiteConfig) -> str:
    return f"{site.residency.container_registry.rstrip('/')}/{IMAGE[0]}:{IMAGE[1]}"


# The outside scanner's (checkov) findings the gateway waives, each with why (the serving chart waives the same).
SCANNER_WAIVERS = {
    "checkov.io/skip1": "CKV_K8S_15=A pinned tag from the in-country registry; IfNotPresent pulls it once per node",
    "checkov.io/skip2": "CKV_K8S_43=A pinned tag mirrored into the site's registry, which is the trust boundary",
}


def labels() -> dict[str, str]:
    return {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "sovkit"}


def _security() -> dict:
    return {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
            "runAsUser": UID, "runAsGroup": UID, "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"}}


def deployment(site: SiteConfig, config_checksum: str) -> dict:
    """The gateway's Deployment spec: restricted pod security, read-only root, non-root, the pinned image from the
    in-country registry; a change of its configuration rolls the pods (the checksum annotation)."""
    probe = {"httpGet": {"path": "/health", "port": "https", "scheme": "HTTPS"}, "periodSeconds": 10}
    container = {
        "name": "nginx", "image": image(site), "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "https", "containerPort": POD_PORT, "protocol": "TCP"}],
        "readinessProbe": probe, "livenessProbe": {**probe, "periodSeconds": 20, "failureThreshold": 3},
        "resources": {"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"cpu": "2", "memory": "1Gi"}},
        "securityContext": _security(),
        "volumeMounts": [
            {"name": "config", "mountPath": "/etc/nginx/nginx.conf", "subPath": "nginx.conf", "readOnly": True},
            {"name": "config", "mountPath": "/etc/nginx/conf.d/sovkit-gateway.conf",
             "subPath": "sovkit-gateway.conf", "readOnly": True},
            {"name": "njs", "mountPath": NJS_DIR, "readOnly": True},
            {"name": "tls", "mountPath": TLS_DIR, "readOnly": True},
            {"name": "logs", "mountPath": LOG_DIR},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    # The template logs to files in LOG_DIR; these links hand them to the container's streams (as nginx's images do).
    links = {"name": "log-links", "image": image(site), "imagePullPolicy": "IfNotPresent",
             "command": ["/bin/sh", "-c", f"ln -sf /dev/stdout {LOG_DIR}/access.json && "
                                          f"ln -sf /dev/stderr {LOG_DIR}/error.log"],
             "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "32Mi"}},
             "securityContext": _security(), "volumeMounts": [{"name": "logs", "mountPath": LOG_DIR}]}
    njs = {"sources": [{"configMap": {"name": CONFIG_MAP, "items": [{"key": "gateway.js", "path": "gateway.js"}]}},
                       {"secret": {"name": TENANTS_SECRET}}], "defaultMode": 0o440}
    return {
        "replicas": REPLICAS,
        "selector": {"matchLabels": labels()},
        "template": {
            "metadata": {"labels": labels(), "annotations": {"checksum/config": config_checksum}},
            "spec": {
                "automountServiceAccountToken": False, "enableServiceLinks": False,
                "securityContext": {"runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID, "fsGroup": UID,
                                    "seccompProfile": {"type": "RuntimeDefault"}},
                "initContainers": [links],
                "containers": [container],
                "volumes": [
                    {"name": "config", "configMap": {"name": CONFIG_MAP, "defaultMode": 0o444}},
                    {"name": "njs", "projected": njs},
                    {"name": "tls", "secret": {"secretName": TLS_SECRET, "defaultMode": 0o440, "items": [
                        {"key": "tls.crt", "path": "gateway.crt"}, {"key": "tls.key", "path": "gateway.key"}]}},
                    {"name": "logs", "emptyDir": {"sizeLimit": "16Mi"}},
                    {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
                ],
            },
        },
    }


def service(site: SiteConfig) -> dict:
    """The gateway's Service: a LoadBalancer where the stack exposes it so, else ClusterIP behind the Ingress."""
    spec: dict = {"type": "ClusterIP", "selector": labels(),
                  "ports": [{"name": "https", "port": SERVICE_PORT, "targetPort": "https", "protocol": "TCP"}]}
    if site.platform.gateway_exposure == "loadBalancer":  # callers from in-country networks only
        spec |= {"type": "LoadBalancer", "loadBalancerSourceRanges": list(site.residency.in_country_cidrs),
                 "externalTrafficPolicy": "Local"}
    return spec


def ingress_annotations() -> dict[str, str]:
    """ingress-nginx (RKE2's ingress controller): TLS again to the gateway, bodies and streams as it takes them."""
    defaults = _role_defaults()
    return {"nginx.ingress.kubernetes.io/backend-protocol": "HTTPS",
            "nginx.ingress.kubernetes.io/proxy-body-size": str(defaults["gateway_max_body"]),
            "nginx.ingress.kubernetes.io/proxy-read-timeout": str(defaults["gateway_upstream_timeout_s"]),
            "nginx.ingress.kubernetes.io/proxy-buffering": "off"}


def ingress(site: SiteConfig) -> dict:
    """The Ingress (gatewayExposure ingress): the stack's gatewayHostname, with the gateway's own certificate."""
    host = site.platform.gateway_hostname
    rule = {"http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
        "service": {"name": NAME, "port": {"name": "https"}}}}]}}
    if host:
        rule["host"] = host
    spec: dict = {"ingressClassName": "nginx", "rules": [rule]}
    if host:
        spec["tls"] = [{"hosts": [host], "secretName": TLS_SECRET}]
    return spec


def endpoint(site: SiteConfig, address: str | None) -> str:
    """The gateway's OpenAI base URL: the stack's hostname, else the address the cluster gave it."""
    host = site.platform.gateway_hostname or address or NAME
    return f"https://{f'[{host}]' if ':' in host else host}/v1"
