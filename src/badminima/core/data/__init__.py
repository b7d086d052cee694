"""Data sets: 2-D toy sets (toy.py) and real image sets."""
