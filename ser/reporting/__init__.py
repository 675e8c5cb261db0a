"""Tables and figures from metrics files and sweeps."""
