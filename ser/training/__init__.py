"""One training run from a composed config: build, fit, test, write the run directory."""
