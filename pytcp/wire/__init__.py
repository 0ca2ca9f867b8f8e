"""pytcp.wire package."""
