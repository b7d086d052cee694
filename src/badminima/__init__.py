"""badminima: the library behind the book on bad global minima (Liu et al. 2020; Ravichandran et al. 2023)."""
