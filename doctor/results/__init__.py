"""The typed results every stage shares: a report, explain's and the smoke test's results,
and what each applied fix did. Probes, explain and the smoke test build them; reporters
only read them. Nothing here imports anything above `doctor.findings`."""
