"""The plugin contract (mspflow.testing.PluginContract) for every NinjaOne action."""

from mspflow_ninjaone import ninjaone

from mspflow.testing import PluginContract


class TestContract(PluginContract):
    module = ninjaone
    known_defects = {  # noqa: RUF012 - found by this suite; remove each line with its fix
        "test_strings_are_bounded[ninjaone.devices.run_script]": "parameters, script_id: no max_length (1 MB accepted)",
    }
