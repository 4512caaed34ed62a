"""mspflow-psa passes the host conformance suite (mspflow.testing.psa) it is the reference of.

(The vendor plugin contract, mspflow.testing.PluginContract, needs a vendor simulator; this tile talks to
no vendor, its 18 actions are covered by test_psa_matrix.py instead.)
"""

from mspflow.testing.psa import PsaConformance


class TestConformance(PsaConformance):
    """Uses this directory's ``app`` fixture (the installed plugin, on SQLite and PostgreSQL)."""
