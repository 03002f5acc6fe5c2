"""Corrections and kills: when the author edits or withdraws a column editors already have.

`detect` compares the version editors received with the feed's current one, paragraph by
paragraph; `advisory` renders what editors get (UPDATED before the release time, CORRECTION
after, KILL) in the draft's own conventions and formats.
"""
