"""pytcp.apps package."""
