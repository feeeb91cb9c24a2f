"""What every sovkit command shares: the consoles and loading a stack with the operator-readable error."""

from __future__ import annotations

from rich.console import Console

from sovkit.config import SiteConfig, load_stack
from sovkit.errors import StackError
from sovkit.stacks import find_stack

console = Console(highlight=False, soft_wrap=True)
errors = Console(stderr=True, highlight=False, soft_wrap=True)


def load_site(stack: str, *, fit: bool = True) -> SiteConfig:
    """The validated site of STACK (a file or a site name); exits 1 on a bad stack, 2 on an unknown one."""
    try:
        return load_stack(find_stack(stack), fit=fit)
    except StackError as err:
        errors.print(str(err), markup=False)
        raise SystemExit(1) from None
    except FileNotFoundError as err:
        errors.print(str(err), markup=False)
        raise SystemExit(2) from None
