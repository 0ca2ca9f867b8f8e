"""pytcp.api package."""
