"""The hostile battery (issue 4): bad input, wrong credentials, other users' requests, spoofed
proxies, races and faults against a real gunicorn with 2 workers, proving nothing changes.

A package, so its conftest imports the live-server launcher as ``integration.conftest``."""
