"""The instructor's tools for the series: the student edition and the grader.

``python -m classroom student [--out DIR]`` writes the student edition of every notebook (each
solution replaced by a stub, the exercises' outputs cleared); ``python -m classroom grade DIR``
executes submitted notebooks, each in a fresh kernel in a throwaway folder, and writes a CSV.
``classroom.checks`` holds what the notebooks' check cells call. ``nn_helpers`` stays the
students' library; nothing here is needed to run the teaching cells.

Importing this package has no side effects and imports neither nbclient nor the kernel.
"""
