"""`sovkit_check`: a role checks one of its inputs with the rule `sovkit validate` applies to the stack key the input
is rendered from (sovkit/config/checks.py), on the machine running the play, before the role changes anything.

    - name: "SOV-TIME-000 | AUDIT | NTP servers are in-country addresses"
      sovkit_check:
        check: in_country_addresses
        name: residency_time_dns_ntp_servers
        value: "{{ residency_time_dns_ntp_servers }}"
        args: {in_country_cidrs: "{{ residency_time_dns_in_country_cidrs }}"}
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from sovkit.config.checks import CHECKS
from sovkit.config.schema import PROJECT
from sovkit.render.role_vars import stack_key_of


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("check", "name", "value", "args"))

    def run(self, tmp=None, task_vars=None):  # type: ignore[no-untyped-def]
        result = super().run(tmp, task_vars)
        check = self._task.args.get("check")
        name = self._task.args.get("name") or "the value"
        if check not in CHECKS:
            raise AnsibleActionFail(f"sovkit_check: unknown check {check!r}; known: {', '.join(sorted(CHECKS))}")
        findings = CHECKS[check](self._task.args.get("value"), **(self._task.args.get("args") or {}))
        result["changed"] = False
        if not findings:
            result["msg"] = f"{name}: {check} passed"
            return result
        source = stack_key_of(name)
        where = f"{name} (from {PROJECT}:{source})" if source else name
        lines = [f"{name}{f.at}: found {f.found}; allowed: {f.allowed}" for f in findings]
        result["failed"] = True
        result["findings"] = lines
        result["msg"] = f"{where}: refusing before any change. " + " | ".join(lines) + ". Nothing was changed."
        return result
