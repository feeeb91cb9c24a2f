"""The local-language quality gate: a model is evaluated through the gateway with lm-evaluation-harness on the
site's own evaluation sets before tenants are granted it (`sovkit gate STACK`). The verdicts, and which grants they
withhold, are pure functions in sovkit.render.gate."""
