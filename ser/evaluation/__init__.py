"""Evaluation of trained models: a checkpoint on the test sets of its data, recordings of any
length, and what ``python evaluate.py`` does with its config. Tables and figures come from
:mod:`ser.reporting`."""
