"""Offline bundles: everything a site installs, and nothing else, with a manifest that proves it."""
