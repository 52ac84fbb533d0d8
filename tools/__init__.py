"""Maintainer tooling, outside the learner's package: notebook checks (`nbcheck`), cleaning
(`nbclean`), batch runs with a summary (`runall`), translation checks (`translations`) and the data
generators' shared plumbing (`generators`). Run with `python -m tools.<name>`; make and the tests do."""
