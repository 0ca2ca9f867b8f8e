"""pytcp.script package."""
