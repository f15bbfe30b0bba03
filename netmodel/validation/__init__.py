"""`netmodel validate`: the model against queueing theory, published figures and the
calibration lab's own measurements, as one table with a tolerance and a verdict per row.

`cases` holds the registry and the row type; the case modules register themselves on
import, in the table's order: `theory`, `published`, `lab`. A new case is a function
decorated with `@case(name, group)` in one of them (or in a new module imported here).
`report.validate` runs them.
"""

from netmodel.validation import lab, published, theory  # noqa: F401  (register the cases)
