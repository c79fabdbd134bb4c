"""File exports: CSV and XLSX files dropped by people land like database tables.

Some data arrives as files (the asset office's 资产卡片 export, for instance). A system's YAML
declares them under `files:`, next to its `tables:`; each file that matches lands as one batch
of the table, in the same landing zone and format as a database table (Parquet + manifest), so
its staging model reads it like any other.

```yaml
files:
  - name: zc_kp_export              # landed table: landing/<system>/zc_kp_export/
    description: 资产卡片 export from the asset office
    path: "{home}/sources/exports/asset/zc_kp_*.csv"   # glob; {home} = CAMPUSDX_HOME
    format: csv                     # csv | xlsx (default: from the file extension)
    encoding: gbk                   # utf-8 (default) | utf-8-sig | gbk | gb18030 | auto
    delimiter: ","                  # csv only; also quotechar (default '"')
    primary_key: [资产编号]
    columns: [资产编号, 资产名称, 使用单位, 价值, 修改时间]   # optional
```

- `name`: the landed table (letters, digits, `_`); not also a name under `tables:`.
- `path`: a glob; `{home}` is the campusdx home; a relative path is taken under the home.
- `format`: `csv` or `xlsx` (an old `.xls` is not read: save it as `.xlsx`).
- `encoding` (csv): decoding is strict: bytes invalid in the encoding stop that file, naming
  the line. GB18030 is a superset of GBK: a character such as 䶮 exists only in GB18030 (or
  UTF-8) files. `auto` lets charset-normalizer choose between UTF-8 and GB18030 and records
  what it found. A UTF-8 byte-order mark is dropped.
- `delimiter`, `quotechar` (csv): the dialect; the header is the first line.
- `sheet` (xlsx): default the first sheet; the header is row 1.
- `primary_key`: required. Duplicate keys in a file land as they are and are counted
  (`duplicate_keys` in the manifest); staging and the quality gate deal with them.
- `columns` (optional): a declared column missing from a file's header stops that file; a
  column not declared lands anyway and is reported (`new_columns` in the manifest, a warning).
  Without `columns`, the header is taken as it is.
- `description`, `enabled`: as for tables.

Every value lands as text, exactly as in the file; an empty cell is null. XLSX numbers and dates
are rendered as text the same way every time: integers without `.0`, other numbers with up to
15 significant digits (as Excel shows them), dates `YYYY-MM-DD`, date-times
`YYYY-MM-DD HH:MM:SS` (by the cell's format). Each row also carries `_batch_id`, `_deleted`
(false, as in a table's batches), `_source_file` (the file's name) and `_source_line` (line in
the CSV, row in the sheet; the header is 1). Blank rows are skipped.
A symbolic link among the matching files (or a linked folder on the way to one) is refused,
naming the file: an export folder holds the files people dropped, not pointers elsewhere.
Messages about a header name the declared columns and positions, never the header's own cells
(a file without a header has personal data in its first line).
A file whose content (sha256) already landed for the table is skipped, whatever its name, so
dropping the same file again changes nothing; a changed file lands as a new batch. A file that
fails does not land; the other files still do, and the task then fails naming every bad file.
"""

from __future__ import annotations

import codecs
import csv
import errno
import glob
import hashlib
import logging
import os
import stat
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from datetime import time as dtime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
from charset_normalizer import from_bytes
from openpyxl.styles.numbers import is_datetime
from openpyxl.utils.exceptions import InvalidFileException
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from campusdx.core.declarations import (
    Declared,
    Wording,
    as_list,
    labelled_items,
    read_yaml,
    validate,
)
from campusdx.core.manifest import Column, Cursor, LandingManifest
from campusdx.sources.landing import BATCH_COLUMN, DELETED_COLUMN, Landing, new_batch_id
from campusdx.sources.sql import DEFAULT_CHUNK_ROWS, BatchResult, ExtractError, schema_fingerprint

log = logging.getLogger(__name__)

SOURCE_FILE_COLUMN = "_source_file"
"""Column added to every row landed from a file: the file's name."""
SOURCE_LINE_COLUMN = "_source_line"
"""Column added to every row landed from a file: its line (CSV) or row (XLSX), header = 1."""

FORMATS = ("csv", "xlsx")
ENCODINGS = ("utf-8", "utf-8-sig", "gbk", "gb18030", "auto")
_CODEC = {"utf-8": "utf-8", "utf-8-sig": "utf-8", "gbk": "gbk", "gb18030": "gb18030"}
# auto: only what the platform's sources write. Left free, charset-normalizer reads a short GBK
# file as cp949 or big5, which decode without error into the wrong characters.
_DETECT_CANDIDATES = ("utf_8", "gb18030", "gbk", "gb2312")
_DETECTED_CODEC = {
    "ascii": "utf-8",
    "utf_8": "utf-8",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "gb18030": "gb18030",
}
_DETECT_BYTES = 1 << 20
_ONLY_FOR = {"csv": {"encoding", "delimiter", "quotechar"}, "xlsx": {"sheet"}}
_RESERVED = (BATCH_COLUMN, DELETED_COLUMN, SOURCE_FILE_COLUMN, SOURCE_LINE_COLUMN)


class FileExtractError(ExtractError):
    """A file did not land; the message names system, table, file and the line or column.

    ``landed`` holds the batches that other files of the same table landed in the same run.
    """

    def __init__(self, message: str, landed: tuple[FileBatch, ...] = ()) -> None:
        super().__init__(message)
        self.landed = landed


@dataclass(frozen=True)
class FileDecl:
    """One kind of export file, landed as the table ``name``."""

    name: str
    path: str
    format: str
    primary_key: tuple[str, ...]
    encoding: str = "utf-8"
    delimiter: str = ","
    quotechar: str = '"'
    sheet: str | None = None
    columns: tuple[str, ...] | None = None
    description: str = ""
    enabled: bool = True

    def pattern(self, home: Path) -> str:
        """The glob with ``{home}`` filled in; a relative pattern is taken under ``home``."""
        pattern = self.path.format(home=home)
        return pattern if Path(pattern).is_absolute() else str(Path(home) / pattern)

    def matching_files(self, home: Path) -> list[Path]:
        """Files matching the glob (symbolic links included, to be refused), sorted by path."""
        return sorted(
            Path(p)
            for p in glob.glob(self.pattern(home), recursive=True)
            if Path(p).is_file() or Path(p).is_symlink()
        )

    def linked(self, home: Path, path: Path) -> Path | None:
        """The symbolic link on the way to ``path`` (the file itself, or a folder below the
        glob's fixed part), or None."""
        pattern = Path(self.pattern(home))
        fixed = Path(*[part for part in _fixed_parts(pattern.parts)])
        try:
            relative = path.relative_to(fixed)
        except ValueError:
            return path if path.is_symlink() else None
        current = fixed
        for part in relative.parts:
            current = current / part
            if current.is_symlink():
                return current
        return None


def _fixed_parts(parts: tuple[str, ...]) -> Iterator[str]:
    """The leading parts of a glob without wildcards."""
    for part in parts:
        if glob.has_magic(part):
            return
        yield part


@dataclass(frozen=True)
class FileBatch(BatchResult):
    """What one file landed (``mode`` is ``"file"``; ``added_columns`` = ``new_columns``)."""

    source_file: str = ""
    sha256: str = ""
    new_columns: tuple[str, ...] = ()
    duplicate_keys: int = 0


# -- declarations -------------------------------------------------------------------------


def _column_name(value: object) -> object:
    """A number as a column name is its text; a list, mapping or null is refused."""
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def _unique(names: list[str]) -> list[str]:
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"names {twice} more than once")
    return names


ColumnName = Annotated[
    str, BeforeValidator(_column_name), StringConstraints(strip_whitespace=True, min_length=1)
]
ColumnNames = Annotated[
    list[ColumnName], BeforeValidator(as_list), Field(min_length=1), AfterValidator(_unique)
]
OneChar = Annotated[str, StringConstraints(min_length=1, max_length=1, pattern=r"^[^\r\n]$")]
Lower = BeforeValidator(lambda v: str(v).lower() if v is not None else v)


class FileSchema(Declared):
    """A ``files:`` entry of a system declaration (see the module's documentation)."""

    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    description: str = ""
    path: str
    format: Annotated[Literal[FORMATS] | None, Lower] = None
    encoding: Annotated[Literal[ENCODINGS], Lower] = "utf-8"
    delimiter: OneChar = ","
    quotechar: OneChar = '"'
    sheet: Annotated[str | None, BeforeValidator(lambda v: v if v is None else str(v))] = None
    primary_key: ColumnNames
    columns: ColumnNames | None = None
    enabled: bool = True

    @model_validator(mode="before")
    @classmethod
    def _empty_is_absent(cls, raw: object) -> object:
        """A required key that is empty counts as absent."""
        required = ("name", "path", "primary_key")
        if isinstance(raw, dict):
            return {k: v for k, v in raw.items() if not (k in required and v in (None, "", []))}
        return raw

    @field_validator("path")
    @classmethod
    def _only_home(cls, pattern: str) -> str:
        try:
            pattern.format(home="")
        except (KeyError, IndexError, ValueError):
            raise ValueError(f"may hold {{home}} and no other braces: {pattern!r}") from None
        return pattern

    @model_validator(mode="after")
    def _consistent(self) -> FileSchema:
        fmt = self.resolved_format
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {list(FORMATS)}, not {fmt!r}")
        misplaced = sorted(
            self.model_fields_set & set().union(*(k for f, k in _ONLY_FOR.items() if f != fmt))
        )
        if misplaced:
            raise ValueError(f"{misplaced} do not apply to format {fmt!r}")
        if self.delimiter == self.quotechar:
            raise ValueError(f"delimiter and quotechar are both {self.delimiter!r}")
        undeclared = [k for k in self.primary_key if self.columns is not None and k not in self.columns]
        if undeclared:
            raise ValueError(f"primary_key {undeclared} is not among the declared columns")
        return self

    @property
    def resolved_format(self) -> str:
        """The declared format, else the path's extension."""
        return self.format or Path(self.path).suffix.lower().lstrip(".")


class FilesDocument(BaseModel):
    """The parts of a system declaration :func:`load_file_decls` reads (the rest is checked by
    ``campusdx.core.declarations.load_system``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    files: list[FileSchema] | None = None
    tables: Any = None

    @model_validator(mode="after")
    def _one_folder_each(self) -> FilesDocument:
        names = [f.name for f in self.files or []]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"files {twice} are declared twice")
        tables = {t.get("name") for t in self.tables or [] if isinstance(t, dict)}
        shared = sorted(tables & set(names))
        if shared:
            raise ValueError(f"{shared} named under both tables and files (one landing folder each)")
        return self


def _file_label(number: int, raw: object) -> str:
    name = raw.get("name") if isinstance(raw, dict) else None
    return f"files entry {number}" + (f" ({name!r})" if isinstance(name, str) else "")


_FILE_WORDING = Wording(missing="{where}: {keys} is required")


def load_file_decls(system_yaml_path: Path | str) -> list[FileDecl]:
    """The ``files:`` entries of one system's declaration (none when the key is absent)."""
    path = Path(system_yaml_path)
    raw = read_yaml(path) or {}
    label = labelled_items("files", raw, _file_label)
    document = validate(FilesDocument, raw, path, label=label, wording=_FILE_WORDING)
    return [
        FileDecl(
            **entry.model_dump(exclude={"format", "primary_key", "columns"}),
            format=entry.resolved_format,
            primary_key=tuple(entry.primary_key),
            columns=None if entry.columns is None else tuple(entry.columns),
        )
        for entry in document.files or []
    ]


# -- reading ------------------------------------------------------------------------------


def _open_export(path: Path, where: str = "export"):
    """``path`` opened for reading as bytes: never through a symbolic link put in its place
    after the folder was listed (``O_NOFOLLOW``), and only a regular file. The one way an
    export file is opened."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise FileExtractError(f"{where}: {path.name} is a symbolic link; refused") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise FileExtractError(f"{where}: {path.name} is not a regular file; refused")
    return os.fdopen(fd, "rb")


def _choose_codec(path: Path, decl: FileDecl, where: str) -> tuple[str, str | None]:
    """The codec to decode with, and what ``auto`` detected (None when declared)."""
    if decl.encoding != "auto":
        return _CODEC[decl.encoding], None
    with _open_export(path, where) as fh:
        sample = fh.read(_DETECT_BYTES)
    if len(sample) == _DETECT_BYTES and b"\n" in sample:
        sample = sample[: sample.rindex(b"\n") + 1]  # never cut a character in two
    best = from_bytes(sample, cp_isolation=list(_DETECT_CANDIDATES)).best()
    if best is None or best.encoding not in _DETECTED_CODEC:
        found = best.encoding if best else "nothing"
        raise FileExtractError(
            f"{where}: encoding auto found {found}, neither UTF-8 nor GBK/GB18030: declare the encoding"
        )
    return _DETECTED_CODEC[best.encoding], best.encoding


def _decoded_lines(fh, codec: str, label: str, where: str, info: dict) -> Iterator[str]:
    """The file's lines, decoded strictly one by one (newline kept), so an error has a line."""
    for number, raw in enumerate(fh, 1):
        if number == 1 and raw.startswith(codecs.BOM_UTF8):
            if codec != "utf-8":
                raise FileExtractError(
                    f"{where}: line 1 starts with a UTF-8 byte-order mark, but the file is read as "
                    f"{label}: declare encoding utf-8"
                )
            info["encoding"] = "utf-8-sig"
        try:
            text = raw.decode(codec)
        except UnicodeDecodeError as exc:
            column = len(raw[: exc.start].decode(codec, errors="replace")) + 1
            hint = "; GB18030 has characters GBK lacks: is the file GB18030?" if codec == "gbk" else ""
            raise FileExtractError(
                f"{where}: line {number}, character {column}: bytes {raw[exc.start : exc.end]!r} "
                f"are not valid {label}{hint}"
            ) from None
        if number == 1 and text.startswith("\ufeff"):  # the byte-order mark (UTF-8's or GB18030's)
            text = text[1:]
        yield text


def _read_csv(path: Path, decl: FileDecl, where: str, info: dict) -> Iterator[tuple[int, list[str | None]]]:
    """(line where the record starts, fields) for every record, the header first."""
    codec, detected = _choose_codec(path, decl, where)
    label = codec if detected is None else f"{codec} (auto detected {detected})"
    info.update(
        encoding=codec,
        encoding_declared=decl.encoding,
        encoding_detected=detected,
        delimiter=decl.delimiter,
        quotechar=decl.quotechar,
    )
    with _open_export(path, where) as fh:
        lines = _decoded_lines(fh, codec, label, where, info)
        reader = csv.reader(lines, delimiter=decl.delimiter, quotechar=decl.quotechar, strict=True)
        while True:
            start = reader.line_num + 1
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise FileExtractError(f"{where}: line {start}: not valid CSV: {exc}") from None
            yield start, [field if field != "" else None for field in fields]


def _render(value: object, number_format: str | None) -> str | None:
    """A cell value as text, the same way every time."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value == 0:
            return "0"
        text = format(Decimal(format(value, ".15g")), "f")  # Excel shows 15 significant digits
        return text.rstrip("0").rstrip(".") if "." in text else text
    if isinstance(value, datetime):
        kind = is_datetime(number_format) if number_format else None
        if value.microsecond:
            return value.isoformat(sep=" ")
        if value.time() == dtime() and kind != "datetime":
            return value.strftime("%Y-%m-%d")
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, dtime):
        return value.isoformat()
    return str(value)


def _read_xlsx(path: Path, decl: FileDecl, where: str, info: dict) -> Iterator[tuple[int, list[str | None]]]:
    """(row number, cells as text) for every row of the sheet, the header first."""
    fh = _open_export(path, where)
    try:
        workbook = openpyxl.load_workbook(fh, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError) as exc:
        fh.close()
        raise FileExtractError(f"{where}: not a readable XLSX workbook: {exc}") from None
    try:
        if decl.sheet is None:
            sheet = workbook.worksheets[0]
        elif decl.sheet in workbook.sheetnames:
            sheet = workbook[decl.sheet]
        else:
            raise FileExtractError(
                f"{where}: no sheet {decl.sheet!r}; the workbook has {workbook.sheetnames}"
            )
        info.update(encoding=None, sheet=sheet.title)
        sheet.reset_dimensions()  # some writers store a wrong size; read every row there is
        for number, row in enumerate(sheet.iter_rows(), 1):
            yield number, [_render(cell.value, getattr(cell, "number_format", None)) for cell in row]
    finally:
        workbook.close()
        fh.close()


# -- landing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    """Which header positions land, under which names, in which order."""

    names: tuple[str, ...]
    positions: tuple[int, ...]
    width: int
    new_columns: tuple[str, ...]
    new_positions: tuple[int, ...] = ()


def _layout(decl: FileDecl, header: list[str | None], where: str) -> _Layout:
    names = [(h or "").strip() for h in header]
    while names and not names[-1]:
        names.pop()  # trailing empty header cells; their cells must stay empty (checked per row)
    if not names:
        raise FileExtractError(f"{where}: line 1 holds no header")
    unnamed = [i + 1 for i, n in enumerate(names) if not n]
    if unnamed:
        raise FileExtractError(f"{where}: header column(s) {unnamed} have no name")
    twice = [i + 1 for i, n in enumerate(names) if names.count(n) > 1]
    if twice:
        raise FileExtractError(f"{where}: header columns at positions {twice} share a name")
    reserved = [n for n in names if n in _RESERVED]
    if reserved:
        raise FileExtractError(f"{where}: header uses reserved column name(s) {reserved}")
    declared = decl.columns if decl.columns is not None else decl.primary_key
    missing = [c for c in declared if c not in names]
    if missing:
        what = "declared column(s)" if decl.columns is not None else "primary key column(s)"
        raise FileExtractError(
            f"{where}: {what} {missing} missing from the header; it has {len(names)} named columns, "
            f"{len(declared) - len(missing)} of the {len(declared)} declared"
        )
    if decl.columns is None:
        order, new = names, []
    else:
        new = [n for n in names if n not in decl.columns]
        order = [*decl.columns, *new]
    return _Layout(
        tuple(order),
        tuple(names.index(n) for n in order),
        len(names),
        tuple(new),
        tuple(names.index(n) + 1 for n in new),
    )


def _fit(fields: list[str | None], width: int, pad: bool, where: str, line: int) -> list[str | None] | None:
    """The row cut to the header's width; None for a blank row."""
    if not any(fields):
        return None
    if any(fields[width:]):
        raise FileExtractError(f"{where}: line {line}: a value beyond the header's {width} named columns")
    if len(fields) < width:
        if not pad:
            raise FileExtractError(f"{where}: line {line}: {len(fields)} fields, the header has {width}")
        fields = fields + [None] * (width - len(fields))
    return fields[:width]


class _ParquetChunks:
    """Rows collected and written as one Arrow record batch per ``chunk_rows``."""

    def __init__(self, tmp: Path, names: tuple[str, ...], batch_id: str, file_name: str, chunk_rows: int):
        self.schema = pa.schema(
            [pa.field(n, pa.string()) for n in names]
            + [
                pa.field(BATCH_COLUMN, pa.string()),
                pa.field(DELETED_COLUMN, pa.bool_()),
                pa.field(SOURCE_FILE_COLUMN, pa.string()),
                pa.field(SOURCE_LINE_COLUMN, pa.int64()),
            ]
        )
        self.writer = pq.ParquetWriter(tmp, self.schema, compression="zstd")
        self.width, self.batch_id, self.file_name, self.chunk_rows = (
            len(names),
            batch_id,
            file_name,
            chunk_rows,
        )
        self.rows: list[list[str | None]] = []
        self.lines: list[int] = []
        self.written = 0

    def add(self, values: list[str | None], line: int) -> None:
        self.rows.append(values)
        self.lines.append(line)
        if len(self.rows) >= self.chunk_rows:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        n = len(self.rows)
        arrays = [pa.array([row[i] for row in self.rows], type=pa.string()) for i in range(self.width)]
        arrays += [
            pa.array([self.batch_id] * n, type=pa.string()),
            pa.array([False] * n, type=pa.bool_()),
            pa.array([self.file_name] * n, type=pa.string()),
            pa.array(self.lines, type=pa.int64()),
        ]
        self.writer.write_batch(pa.record_batch(arrays, schema=self.schema))
        self.written += n
        self.rows, self.lines = [], []

    def close(self) -> None:
        self.flush()
        self.writer.close()


def _stat(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with _open_export(path) as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _land_one(
    system: str,
    decl: FileDecl,
    path: Path,
    digest: str,
    stat: tuple[int, int],
    landing: Landing,
    chunk_rows: int,
) -> FileBatch:
    started = time.monotonic()
    where = f"{system}.{decl.name}: file {path.name}"
    info: dict = {"file": path.name, "sha256": digest, "bytes": stat[0], "format": decl.format}
    read = _read_csv if decl.format == "csv" else _read_xlsx
    records = read(path, decl, where, info)
    batch_id = new_batch_id()
    tmp = landing.table_dir(system, decl.name) / f"{batch_id}.parquet.tmp"
    chunks = None
    try:
        _, header = next(records, (1, []))
        layout = _layout(decl, header, where)
        key_at = [layout.names.index(k) for k in decl.primary_key]
        chunks = _ParquetChunks(tmp, layout.names, batch_id, path.name, chunk_rows)
        rows = duplicates = null_keys = 0
        seen: set[tuple[str | None, ...]] = set()
        for line, fields in records:
            row = _fit(fields, layout.width, decl.format == "xlsx", where, line)
            if row is None:
                continue
            values = [row[i] for i in layout.positions]
            key = tuple(values[i] for i in key_at)
            if None in key:
                null_keys += 1
            elif key in seen:
                duplicates += 1
            else:
                seen.add(key)
            chunks.add(values, line)
            rows += 1
        chunks.close()
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        if _stat(path) != stat:
            raise FileExtractError(
                f"{where}: the file changed while it was read; the next run reads it again"
            )
        landed = pq.read_metadata(tmp).num_rows
        if landed != rows:
            raise FileExtractError(f"{where}: read {rows} rows but wrote {landed}")
    except BaseException:
        records.close()
        if chunks is not None:
            chunks.writer.close()
        tmp.unlink(missing_ok=True)
        raise
    if layout.new_columns:
        log.warning(
            "%s: header column(s) at position(s) %s are not declared; landed anyway (see the manifest)",
            where,
            list(layout.new_positions),
        )
    manifest = LandingManifest(
        system=system,
        table=decl.name,
        batch_id=batch_id,
        mode="file",
        rows=rows,
        tombstones=0,
        primary_key=list(decl.primary_key),
        cursor=Cursor(),
        key_snapshot=None,
        keys=None,
        added_columns=list(layout.new_columns),
        source={**info, "schema_fingerprint": schema_fingerprint(chunks.schema)},
        columns=[Column(name=f.name, type=str(f.type)) for f in chunks.schema],
        new_columns=list(layout.new_columns),
        duplicate_keys=duplicates,
        null_keys=null_keys,
    )
    landing.commit(system, decl.name, batch_id, tmp, manifest)
    seconds = time.monotonic() - started
    log.info("landed %s: %d rows in batch %s, %.2fs", where, rows, batch_id, seconds)
    return FileBatch(
        system,
        decl.name,
        batch_id,
        rows,
        "file",
        seconds,
        added_columns=layout.new_columns,
        source_file=path.name,
        sha256=digest,
        new_columns=layout.new_columns,
        duplicate_keys=duplicates,
    )


def extract_file(
    system: str,
    decl: FileDecl,
    home: Path,
    landing: Landing,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    lock_wait_s: float | None = None,
) -> list[FileBatch]:
    """Land every matching file whose content has not landed yet for this table, one batch each.

    Files are taken in path order. A file that fails lands nothing; the others still land, and
    then a ``FileExtractError`` names every file that failed (its ``landed`` lists the batches).
    The table's extraction lock is held throughout (``lock_wait_s`` as for
    :func:`campusdx.sources.sql.extract_table`).
    """
    where = f"{system}.{decl.name}"
    files = decl.matching_files(Path(home))
    if not files:
        log.info("%s: no file matches %s", where, decl.pattern(Path(home)))
        return []
    with landing.lock(system, decl.name, wait_s=lock_wait_s):
        return _extract_files(system, decl, home, landing, files, chunk_rows)


def _extract_files(
    system: str, decl: FileDecl, home: Path, landing: Landing, files: list[Path], chunk_rows: int
) -> list[FileBatch]:
    where = f"{system}.{decl.name}"
    landing.prepare(system, decl.name)
    landed = {
        m["source"]["sha256"]: m
        for m in landing.manifests(system, decl.name)
        if isinstance(m.get("source"), dict) and m["source"].get("sha256")
    }
    batches: list[FileBatch] = []
    failures: list[str] = []
    for path in files:
        link = decl.linked(Path(home), path)
        if link is not None:
            failures.append(
                f"{where}: file {path.name}: refused, {link} is a symbolic link; "
                "an export folder takes regular files only"
            )
            continue
        try:
            stat = _stat(path)
            digest = _sha256(path)
        except OSError as exc:
            failures.append(f"{where}: file {path.name}: cannot read: {exc}")
            continue
        if digest in landed:
            earlier = landed[digest]
            log.info(
                "%s: file %s skipped: same content as %s, landed in batch %s",
                where,
                path.name,
                earlier["source"].get("file"),
                earlier["batch_id"],
            )
            continue
        try:
            batch = _land_one(system, decl, path, digest, stat, landing, chunk_rows)
        except FileExtractError as exc:
            log.error("%s", exc)
            failures.append(str(exc))
            continue
        except OSError as exc:
            failures.append(f"{where}: file {path.name}: cannot read: {exc}")
            continue
        landed[digest] = {"source": {"file": path.name}, "batch_id": batch.batch_id}
        batches.append(batch)
    if failures:
        head = "" if len(failures) == 1 else f"{len(failures)} files of {where} did not land:\n"
        raise FileExtractError(head + "\n".join(failures), tuple(batches))
    return batches
