"""Runs over datasets: input, services, cron and schedules, costs and budget,
output checks, LLM judges, finishing a job, the report."""
