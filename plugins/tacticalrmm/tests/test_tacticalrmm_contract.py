"""The plugin contract (mspflow.testing.PluginContract) for every Tactical RMM action."""

from mspflow_tacticalrmm import tacticalrmm

from mspflow.testing import PluginContract


class TestContract(PluginContract):
    module = tacticalrmm
    known_defects = {  # noqa: RUF012 - found by this suite; remove each line with its fix
        "test_strings_are_bounded[tacticalrmm.agents.run_script]": "args[], env_vars[]: no max_length (1 MB accepted)",
    }
