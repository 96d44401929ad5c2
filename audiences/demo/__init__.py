"""Deterministic synthetic loyalty data for demos, tests and benchmarks (`loyalflow demo-data`)."""

from audiences.demo.errors import DemoDataExists, DemoDataResetBlocked
from audiences.demo.generator import CHUNK_MEMBERS, DemoSummary, check_request, generate

__all__ = ["CHUNK_MEMBERS", "DemoDataExists", "DemoDataResetBlocked", "DemoSummary", "check_request", "generate"]
