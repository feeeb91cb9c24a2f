from sovkit.cli import run

raise SystemExit(run())
