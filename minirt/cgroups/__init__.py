"""cgroups: resource limits and accounting (limits.py: flags -> values; the drivers write them)."""
