"""The plugin contract (mspflow.testing.PluginContract) for every Level action."""

from mspflow_levelio import levelio

from mspflow.testing import PluginContract


class TestContract(PluginContract):
    module = levelio
