"""Drills: scenario → faults → replay on a simulated (or the wall) clock → scorecard → journal.

`run` runs one; `schedule` says which are due; `coverage` says what no drill exercises;
`generate` writes a starter scenario for a check; `scorecard` renders and saves the result.
"""
