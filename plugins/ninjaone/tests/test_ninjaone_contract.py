"""The plugin contract (mspflow.testing.PluginContract) for every NinjaOne action."""

from mspflow_ninjaone import ninjaone

from mspflow.testing import PluginContract


class TestContract(PluginContract):
    module = ninjaone
