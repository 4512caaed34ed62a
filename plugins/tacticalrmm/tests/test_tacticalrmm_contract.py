"""The plugin contract (mspflow.testing.PluginContract) for every Tactical RMM action."""

from mspflow_tacticalrmm import tacticalrmm

from mspflow.testing import PluginContract


class TestContract(PluginContract):
    module = tacticalrmm
