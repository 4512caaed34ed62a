"""The plugin contract (mspflow.testing.PluginContract) for every NinjaOne action."""

from mspflow_ninjaone import ninjaone

from mspflow.testing import PluginContract

LIES = "issue 9 defect 10: the input schema does not say what the model checks"


class TestContract(PluginContract):
    module = ninjaone
    known_defects = {  # noqa: RUF012 - found by this suite; remove each line with its fix
        "test_strings_are_bounded[ninjaone.devices.run_script]": "parameters and script_id have no max_length",
        "test_valid_input_is_accepted[ninjaone.devices.run_script]": f"{LIES}: script_id required when type=SCRIPT",
        "test_valid_input_is_accepted[ninjaone.alerts.get]": f"{LIES}: exactly one of alert_uid, external_alert_id",
        "test_valid_input_is_accepted[ninjaone.alerts.reset]": f"{LIES}: exactly one of alert_uid, external_alert_id",
    }
