"""The ports a site's hosts listen on: one place for the firewall, the roles, the Pulumi security groups and
the endpoints sovkit prints."""

GATEWAY = 443  # the TLS gateway (hosts mode): the OpenAI-compatible API, per-tenant keys
PROMETHEUS = 9090  # hosts mode: Prometheus on the first serving node
NODE_EXPORTER = 9100  # every host: scraped by Prometheus from inside the site
ALERTMANAGER = 9093  # hosts mode: Alertmanager beside Prometheus, on loopback only (no cluster port)
BLACKBOX_EXPORTER = 9115  # hosts mode: probes the gateways' TLS for Prometheus, on loopback only
GPU_EXPORTER = 9400  # hosts mode, GPU hosts: sovkit's NVML exporter, on DCGM exporter's port
GATEWAY_LOG_METRICS = 3903  # hosts mode, serving hosts: mtail's counts of the gateway's log, on loopback only
# The monitoring stack's ports (hosts mode): refused to the model servers' account even on loopback.
MONITORING = (PROMETHEUS, ALERTMANAGER, NODE_EXPORTER, BLACKBOX_EXPORTER, GPU_EXPORTER, GATEWAY_LOG_METRICS)

# Kubernetes mode (RKE2 with its default CNI, Canal), from RKE2's documented inbound rules.
KUBE_API = 6443  # the API server, on control-plane nodes: the other nodes, the pods and the admins
RKE2_SUPERVISOR = 9345  # where nodes join and fetch their configuration, on control-plane nodes
KUBELET = 10250  # every node: the API server and metrics reach each kubelet
ETCD = (2379, 2380)  # control-plane nodes only: etcd's clients and its peers
VXLAN = 8472  # UDP, every node: Canal/Flannel's overlay between the nodes
