"""tokenwire as a locust load test (the plugin: `harness/load/plugin.py`, documented there).

    locust -f scenarios/locustfile.py --host http://127.0.0.1:8000 --headless \\
           -u 20 -r 20 -t 20s --stop-timeout 10 --tokenwire-out results/my-load
    python bench.py load --scenario scenarios/load-steady.toml

Locust finds here one User class per registered transport, the scenario's load shape and
tokenwire's event listeners (registered when the plugin is imported).
"""

from harness.load.plugin import USER_CLASSES, ScenarioShape

globals().update({cls.__name__: cls for cls in USER_CLASSES.values()})
__all__ = ["ScenarioShape", *(cls.__name__ for cls in USER_CLASSES.values())]
