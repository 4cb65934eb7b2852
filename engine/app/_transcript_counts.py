"""What transcript imports did: one import's report, the counts imports add up, the importer's
statistics (for ``status``)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

__all__ = ["ImportCounts", "ImportReport", "ImportStatistics"]


@dataclass(frozen=True, slots=True)
class ImportCounts:
    """What imports did.

    Attributes:
        lines: complete lines read.
        records: records those lines held.
        stored: messages stored.
        duplicates: messages already stored (by their record's uid), not stored again.
        summaries: summary facts set.
        skipped: lines that gave nothing (not JSON, an unknown record type, too long).
        ignored: records that become nothing (harness records, empty texts).
        restarts: reads started again from 0 because the file was smaller than the offset.
    """

    lines: int = 0
    records: int = 0
    stored: int = 0
    duplicates: int = 0
    summaries: int = 0
    skipped: int = 0
    ignored: int = 0
    restarts: int = 0

    def __add__(self, other: ImportCounts) -> ImportCounts:
        return ImportCounts(
            *(getattr(self, f.name) + getattr(other, f.name) for f in fields(ImportCounts))
        )

    def as_dict(self) -> dict[str, int]:
        """JSON-ready form."""
        return {f.name: getattr(self, f.name) for f in fields(ImportCounts)}


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What one :meth:`TranscriptImporter.import_file` did.

    Attributes:
        counts: what it read and stored.
        offset: where the next import of the transcript starts.
        size: the file's size when last read.
        done: it read everything complete (False: its byte budget ran out first; call again).
    """

    counts: ImportCounts
    offset: int
    size: int
    done: bool


@dataclass(frozen=True, slots=True)
class ImportStatistics:
    """The importer's counters since it opened (for ``status``).

    Attributes:
        scheduled: imports scheduled (a transcript already waiting counts once).
        dropped: schedules refused because the queue was full.
        queued: transcripts waiting now.
        imports: imports finished (scheduled or asked for at once).
        errors: imports that failed.
        last_error: the last failure, if any.
        counts: what the imports did, summed.
    """

    scheduled: int
    dropped: int
    queued: int
    imports: int
    errors: int
    last_error: str | None
    counts: ImportCounts

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "scheduled": self.scheduled,
            "dropped": self.dropped,
            "queued": self.queued,
            "imports": self.imports,
            "errors": self.errors,
            "last_error": self.last_error,
            **self.counts.as_dict(),
        }
