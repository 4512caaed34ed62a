# Repo-root conftest: applies to tests/ and plugins/*/tests alike.
pytest_plugins = ["tests.servers", "tests.plugin_fixtures"]
