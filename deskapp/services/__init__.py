"""Domain logic with no UI: order insights, demo data, and (later) checks and rules."""
