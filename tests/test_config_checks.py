"""The configuration checks of core/config.py, asserted exactly: the one line each refusal prints and the bounds."""
