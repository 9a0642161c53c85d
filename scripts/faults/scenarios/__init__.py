"""The fault scenarios, in the order `scripts/faults/run` runs them. Each module has NAME,
SUMMARY and run(ctx), which creates one or more checked runs (lib.Run)."""

import importlib

ORDER = ["kill9_storm", "coord_kill", "stale", "hostile_http", "disk_full", "clock_steps", "partition",
         "restart_attached"]

SCENARIOS = {}
for _module_name in ORDER:
    _module = importlib.import_module(f"scenarios.{_module_name}")
    SCENARIOS[_module.NAME] = _module
