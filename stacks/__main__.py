"""The Pulumi program of a sovkit site: `pulumi up` in the project root runs it for the selected stack.

It stays thin: the site comes from the stack config through sovkit's schema (a mistake stops the run with
the message `sovkit validate` gives), and sovkit's components build everything else (sovkit/infra/).
"""

from pathlib import Path

import pulumi

from sovkit.errors import StackError
from sovkit.infra.program import build, export
from sovkit.infra.pulumi_config import site_from_pulumi

try:
    site = site_from_pulumi()
except StackError as err:
    raise pulumi.RunError(str(err)) from None

export(build(site, root=Path(__file__).resolve().parent.parent))
