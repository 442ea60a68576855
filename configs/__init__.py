"""ml_collections config files (`get_config()`); see each file's docstring for its command."""
