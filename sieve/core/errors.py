"""Domain errors; they carry the field at fault, never an HTTP status."""


class SieveError(Exception):
    """Base of every error Sieve reports to a client."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(SieveError):
    """The request is well-formed but its content breaks a rule of the domain."""


class NotFound(SieveError):
    """The named pool, item or job does not exist."""


class Conflict(SieveError):
    """The request clashes with the current state (duplicate id, no model yet...)."""


class Pending(Exception):
    """The answer is being computed by a job: the client polls the job, or asks again shortly."""

    def __init__(self, message: str, job_id: str | None, strategy: str):
        super().__init__(message)
        self.message = message
        self.job_id = job_id
        self.strategy = strategy
