"""The plugin contract (mspflow.testing.PluginContract) for every Tactical RMM action."""

from mspflow_tacticalrmm import tacticalrmm

from mspflow.testing import PluginContract

LIES = "issue 9 defect 10: the input schema does not say what the model checks"


class TestContract(PluginContract):
    module = tacticalrmm
    known_defects = {  # noqa: RUF012 - found by this suite; remove each line with its fix
        "test_strings_are_bounded[tacticalrmm.agents.run_script]": "args[] and env_vars[] items have no max_length",
        "test_valid_input_is_accepted[tacticalrmm.agents.run_script]": f"{LIES}: env_vars items must be KEY=value",
        "test_valid_input_is_accepted[tacticalrmm.agents.reboot]": f"{LIES}: 'at' is a date-time without offset",
    }
