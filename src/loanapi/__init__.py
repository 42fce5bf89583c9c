"""loanapi: a loan origination REST API."""

__version__ = "0.1.0"
