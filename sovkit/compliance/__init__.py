"""The compliance suite users run against their own hosts: `sovkit verify STACK` runs it, one pytest process per
host, with the expectations read from the site's rendered inventory. It ships inside the package so an installed
sovkit carries it; it is not one of sovkit's own tests."""
