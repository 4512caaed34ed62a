"""The plugin contract (mspflow.testing.PluginContract) for every Huntress action."""

from mspflow_huntress import huntress

from mspflow.testing import PluginContract


class TestContract(PluginContract):
    module = huntress
