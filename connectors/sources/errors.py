"""Extraction errors, in a module of their own so DAG files can import them without pulling in
pyarrow, DuckDB or SQLAlchemy at parse time."""


class ExtractError(RuntimeError):
    """Extraction of one table failed; the message names system, table and column."""


class SourceUnreachable(ExtractError):
    """The source did not answer after the retries; the message names the connection."""
