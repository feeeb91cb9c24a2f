"""`sovkit verify STACK`: run the compliance suite against a site's hosts and write the reports."""

from sovkit.verify.report import CheckResult, Report
from sovkit.verify.runner import run_verify

__all__ = ["CheckResult", "Report", "run_verify"]
