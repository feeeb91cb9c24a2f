"""Renderers: pure functions of a validated SiteConfig. They import neither Pulumi nor Ansible.

    inventory.render_inventory(site) -> dict          the Ansible inventory, with every role variable rendered
    vllm_args.render_vllm(site, served_name)           vLLM's arguments and environment, both serving modes
    values.render_values(site) -> dict                 values of charts/sovkit-serving (kubernetes mode)
    packages.host_packages(roles_dir, accelerator)     the Debian packages the roles install (bundle contents)
"""
