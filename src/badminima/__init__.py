"""badminima: the library behind the book on bad global minima (Liu et al. 2020; Ravichandran et al. 2023)."""
from badminima.core import runtime

# Before any of the library's modules computes: the kernels every result is computed with (core/runtime.py).
runtime.pin_kernels()
