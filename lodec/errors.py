"""One exception tree for lodec.

Every error carries a stable ``code`` (snake_case, listed in
``docs/errors.md``), the ``file`` it concerns and a ``location`` inside that
file (a JSON pointer such as ``/inputs/model``, ``line 3 column 9`` for JSON
syntax, or a byte offset with its context such as ``byte 17 (field
"inputs", id 4)``). ``str(error)`` is the one-line message the CLI
prints: ``FILE: LOCATION: message``.

The library never prints or exits; the CLI turns these into exit code 1.

Callers decide by class (``except FileMissing``), never by comparing
``code`` strings: each class below has one stable class-level ``code``; a
few raise sites pass a more specific ``code=`` (listed in
``docs/errors.md``), which never changes the class.
"""

from __future__ import annotations


class LodecError(Exception):
    """Base of every error lodec raises for bad input or failed checks.

    ``LodecError(message, *, code=None, file=None, location=None)``:
    ``code`` overrides the class's default code for this instance.

    Attributes:
        code: stable machine-readable code, e.g. ``"non_canonical"``.
        message: human sentence without file or location.
        file: path (or label) of the input concerned, or ``None``.
        location: place inside that input (JSON pointer, field, ``@offset``).
    """

    code = "error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        file: str | None = None,
        location: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.file = file
        self.location = location

    def with_file(self, file: str) -> LodecError:
        """Return this error, labelled with ``file`` if it had no file yet."""
        if self.file is None:
            self.file = file
        return self

    def __str__(self) -> str:
        parts = [p for p in (self.file, self.location) if p]
        parts.append(self.message)
        return ": ".join(parts)

    def to_dict(self) -> dict[str, str | None]:
        """JSON-ready form: ``{"code", "file", "location", "message"}``."""
        return {
            "code": self.code,
            "file": self.file,
            "location": self.location,
            "message": self.message,
        }


class SchemaError(LodecError):
    """A ``.lode`` schema is malformed (bad type, duplicate id, ...)."""

    code = "schema_invalid"


class SourceError(LodecError):
    """Source JSON (a step, a manifest) is malformed or does not fit its schema."""

    code = "source_invalid"


class DecodeError(LodecError):
    """Vein bytes are malformed or not in canonical form."""

    code = "vein_malformed"


class SchemaMismatch(DecodeError):
    """A vein's header names another schema than the one it is decoded with (code ``schema_mismatch``)."""

    code = "schema_mismatch"


class LimitExceeded(LodecError):
    """An input is larger than a documented limit (checked before the work).

    Raise this class for every limit (never another class with
    ``code="limit_exceeded"``), so callers can tell limits apart by class.
    Code ``limit_exceeded``.
    """

    code = "limit_exceeded"


class FileMissing(LodecError):
    """An input file does not exist. Code ``file_not_found``.

    Raised by ``lodec.files.read_bounded``; callers for which an absent file
    means "empty" (the rollback state) catch this class.
    """

    code = "file_not_found"


class FileUnreadable(LodecError):
    """An input path cannot be read. Code ``file_unreadable``.

    A directory or other non-regular file, no permission, or an I/O error;
    the message is the operating system's (``strerror``) or ``"not a
    regular file"``.
    """

    code = "file_unreadable"


class FileUnwritable(LodecError):
    """An output cannot be written. Code ``file_unwritable``.

    Raised by ``lodec.files.atomic_write`` / ``atomic_write_many`` after
    removing their temp files, so nothing partial is left at the final path.
    """

    code = "file_unwritable"


class OutputUnwritable(FileUnwritable):
    """Standard output cannot be written (a full disk, an I/O error). Code ``output_unwritable``.

    The CLI reports it on stderr and exits 1 instead of a traceback; a closed pipe
    (``lodec … | head``) ends the command quietly with exit 1 instead.
    """

    code = "output_unwritable"


class StateInvalid(LodecError):
    """The rollback state file is malformed. Code ``state_invalid``.

    Never silently reset: a malformed state could hide a rollback.
    ``location`` is a JSON pointer into the file.
    """

    code = "state_invalid"


class UnsafeNameError(LodecError):
    """A step or record name cannot be used as a file name."""

    code = "unsafe_name"


class StackError(LodecError):
    """A stack's graph is invalid: dangling dependsOn, cycle, bad entry point."""

    code = "stack_invalid"


class ManyErrors(LodecError):
    """Several inputs failed at once (``lodec compile`` of many sources, ``lodec lock`` of many skills).

    ``errors`` holds every one, in input order; the code, file, location and
    message are the first one's, so a caller that reads one error still reads
    a real one. The CLI prints a line for each.
    """

    def __init__(self, errors: list[LodecError]) -> None:
        if not errors:
            raise ValueError("ManyErrors needs at least one error")
        first = errors[0]
        super().__init__(first.message, code=first.code, file=first.file, location=first.location)
        self.errors = list(errors)

    def to_dict(self) -> dict[str, str | None]:
        """The first error's ``{"code", "file", "location", "message"}`` (``errors`` has them all)."""
        return self.errors[0].to_dict()


class VerificationFailed(LodecError):
    """A stack was rejected; ``report`` lists every problem found."""

    code = "verification_failed"

    def __init__(self, report: object, message: str = "stack rejected") -> None:
        super().__init__(message)
        self.report = report


class KeyInvalid(LodecError):
    """A key file is unreadable, malformed, encrypted without a passphrase, or not Ed25519."""

    code = "key_invalid"


class EnvelopeError(LodecError):
    """A DSSE envelope, its payload, a trust policy or a pack is malformed."""

    code = "envelope_malformed"


class SkillError(LodecError):
    """A skill folder that is not a valid skill, cannot be found, or drifted from its pin."""

    code = "skill_invalid"


class RunError(LodecError):
    """``lodec run`` and its records: a refusal before any step starts, or a missing run."""

    code = "run_refused"


class DistributionError(LodecError):
    """A push or pull through a registry or an OCI image layout failed (``lodec.dist``).

    Code ``distribution_failed``; raise sites give a more specific code:
    ``registry_unreachable``, ``registry_error``, ``registry_auth``,
    ``artifact_not_found``, ``artifact_invalid``, ``digest_mismatch``,
    ``referrer_missing``, ``referrer_mismatch``, ``layout_invalid``.
    """

    code = "distribution_failed"
