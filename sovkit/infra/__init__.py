"""sovkit's Pulumi components: Nodes, HostConfiguration, KubernetesPlatform and the residency transform.

`sovkit.infra.program.build(site, root=...)` assembles them; stacks/__main__.py calls it.
"""
