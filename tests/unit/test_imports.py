"""Every module of the kit imports on its own, as the first sovkit module a process loads: a command run in the lab
(`python -c "from sovkit.usage.collect import ..."`), a plugin Ansible loads, or pytest's loading of the compliance
suite's conftest each start from a different module, and an import cycle breaks only the ones that start in it."""

from __future__ import annotations

import json
import subprocess
import sys

IMPORT_EACH_ALONE = """
import importlib, json, pkgutil, sys, traceback
import sovkit
# __main__ modules run a command when imported; they are what `python -m` starts, not imported
names = sorted(m.name for m in pkgutil.walk_packages(sovkit.__path__, "sovkit.") if not m.name.endswith("__main__"))
broken = {}
for name in names:
    for loaded in [m for m in sys.modules if m == "sovkit" or m.startswith("sovkit.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except BaseException:
        broken[name] = traceback.format_exc(limit=-3)
print(json.dumps({"modules": len(names), "broken": broken}))
"""


def test_every_module_imports_first_and_alone() -> None:
    proc = subprocess.run([sys.executable, "-c", IMPORT_EACH_ALONE], capture_output=True, text=True, timeout=600,
                          check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["modules"] > 100
    assert not result["broken"], "\n".join(f"{name}:\n{trace}" for name, trace in result["broken"].items())
