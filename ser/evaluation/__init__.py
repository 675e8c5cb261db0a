"""Evaluation of trained models: a checkpoint on the test sets of its data (its training config
rebuilt), and what ``python evaluate.py`` does with its config. Recordings are classified by
:mod:`ser.inference`; tables and figures come from :mod:`ser.reporting`."""
