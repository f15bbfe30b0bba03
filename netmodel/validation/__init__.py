"""`netmodel validate`: the model against queueing theory, published figures and the
calibration lab's own measurements, as one table with a tolerance and a verdict per row.

`cases` holds the registry and the row type; the case modules (`theory`, `published`,
`lab`, `cases.CASE_MODULES`) register themselves when first needed (`cases.ordered()`), so
that `netmodel --help` does not load the engines. A new case is a function decorated with
`@case(name, group)` in one of them (or in a new module listed in CASE_MODULES).
`report.validate` runs them.
"""
